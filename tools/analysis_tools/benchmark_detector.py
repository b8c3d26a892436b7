"""Whole training iterations of two detector configs, timed in one process;
prints the ratio B / A.

    python tools/analysis_tools/benchmark_detector.py \
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
        configs/faster_rcnn_topo_r50_fpn.py --batch-size 2 --img-size 320

An iteration is what mmengine's training loop runs per batch:
``model.train_step`` (data preprocessor, losses, backward, and the
optimizer step of the config's ``optim_wrapper``) on a synthetic batch of
the given size with a few random boxes per image, the same batch for both.
Custom hooks are not run (the sparsity hook's proximal step touches a few
edge tensors per iteration). Weights are as built (no ``init_cfg``
checkpoint is loaded), which does not change the work done.

The models take turns (interleaved rounds after warm-up rounds), so machine
noise hits both alike; the ratio is the median of the per-round ratios,
with their 25th-75th percentile range as the spread.
"""
import argparse
import json

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper

from mmtopo.utils.benchmark import (AMP_DTYPES, add_timing_args,
                                    check_timing_args, describe_machine,
                                    describe_settings, format_time,
                                    interleaved_times, ratio_stats)


class Detector:
    """One config's detector and optimizer, ready to train on a batch."""

    def __init__(self, config: str, args):
        # 'mmdet::faster_rcnn/...' names a stock config, as in _base_
        cfg = get_config(config) if '::' in config else Config.fromfile(config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        torch.manual_seed(0)
        self.model = MODELS.build(cfg.model).to(args.device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        optim_cfg = cfg.optim_wrapper.copy()
        if args.amp:
            # AmpOptimWrapper names the dtype as torch does: 'bfloat16'
            dtype = str(AMP_DTYPES[args.amp]).replace('torch.', '')
            optim_cfg.update(type='AmpOptimWrapper', dtype=dtype)
        self.optim_wrapper = build_optim_wrapper(self.model, optim_cfg)
        self.model.train()
        self.train_step = self.model.train_step
        if args.compile:  # as mmengine's Runner does with compile=True
            self.train_step = torch.compile(self.train_step)
        self.name = config

    def step(self, data: dict) -> None:
        self.train_step(data, self.optim_wrapper)


def synthetic_batch(args) -> dict:
    data = demo_mm_inputs(
        batch_size=args.batch_size,
        image_shapes=(3, args.img_size, args.img_size),
        num_items=[args.boxes] * args.batch_size,
        num_classes=args.num_classes,
        device=args.device)
    return data


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config_a', help='the reference, e.g. a stock config')
    parser.add_argument('config_b', help='the config compared with it')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--img-size', type=int, default=320)
    parser.add_argument(
        '--boxes', type=int, default=5, help='ground-truth boxes per image')
    parser.add_argument('--num-classes', type=int, default=80)
    add_timing_args(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of both configs')
    args = parser.parse_args(argv)
    check_timing_args(parser, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    detectors = dict(
        a=Detector(args.config_a, args), b=Detector(args.config_b, args))
    data = synthetic_batch(args)
    steps = {key: (lambda d=d: d.step(data)) for key, d in detectors.items()}
    times = interleaved_times(steps, args.iters, args.warmup, args.device)
    stats = {key: ratio_stats(times[key], times['a']) for key in times}
    settings = describe_settings(args.compile, args.channels_last, args.amp)
    print(f'{describe_machine(args.device)}; batch {args.batch_size} of '
          f'{args.img_size}x{args.img_size}, {settings}; {args.warmup} '
          f'warm-up + {args.iters} interleaved rounds of train_step')
    print('| config | train iteration (ratio to A, 25th-75th pct) |')
    print('| --- | --- |')
    for key, d in detectors.items():
        print(f'| {key.upper()}: {d.name} | {format_time(stats[key])} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(args=vars(args), a=stats['a'], b=stats['b']), f, indent=2)


if __name__ == '__main__':
    main()
