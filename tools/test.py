"""Evaluate a checkpoint: mmdet's / mmpretrain's tools/test.py arguments."""
import argparse
import os

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)
from mmtopo.utils.launch import (add_common_args, build_runner,
                                 close_distributed, load_config)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {args.out!r}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.out is not None:  # one more metric: dump the predictions
        metrics = cfg.test_evaluator
        metrics = list(metrics) if isinstance(metrics,
                                              (list, tuple)) else [metrics]
        cfg.test_evaluator = metrics + [
            dict(type='DumpResults', out_file_path=args.out)
        ]
    runner = build_runner(cfg, mode='test')
    runner.test()
    close_distributed(runner)


if __name__ == '__main__':
    main()
