"""Parameters and FLOPs of a topology model: dense, as trained, and pruned.

    python tools/analysis_tools/get_flops.py CONFIG [--checkpoint CKPT] \
        [--shape H W] [--threshold T] [--cfg-options K=V ...]

Counts with mmengine's ``FlopAnalyzer`` (multiply-adds), the edge
aggregation included, in eval mode, where zero edges and blocks that cannot
reach a stage's output are skipped. Three networks side by side, for the
backbone and the whole model (a detector's heads on a blank image of the
given shape, a classifier's head):

* ``dense``: every learnable edge active (what the budgets are fractions of);
* ``trained``: the checkpoint as it runs (no checkpoint: as initialised);
* ``pruned``: the deployable model ``prune_topology.py`` writes at
  ``--threshold`` (dead blocks removed, also from the parameters).
"""
import argparse
import sys
from typing import Dict, Optional

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmtopo  # noqa: F401  (registers modules and the aggregation's FLOPs)
from mmtopo.models import topology_backbone
from mmtopo.utils.complexity import count_flops, densified
from mmtopo.utils.pruning import prune_model


def blank_inputs(model, shape) -> tuple:
    """``(inputs, data_samples)`` of one blank image for ``model``'s
    ``tensor`` mode; detectors need the image metadata."""
    h, w = shape
    divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
    ph, pw = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
    inputs = torch.zeros(1, 3, ph, pw)
    if model.__module__.startswith('mmdet'):
        from mmdet.structures import DetDataSample
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(ph, pw),
                batch_input_shape=(ph, pw),
                scale_factor=(1.0, 1.0)))
        return inputs, [sample]
    return inputs, None


class TensorMode(torch.nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` as a one-argument
    module, which the FLOP tracer needs."""

    def __init__(self, model, data_samples):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs):
        return self.model(inputs, self.data_samples, mode='tensor')


def measure(model, shape) -> Dict[str, float]:
    """Params and FLOPs of the backbone and the whole model."""
    _, backbone = topology_backbone(model)
    inputs, samples = blank_inputs(model, shape)
    return dict(
        backbone_params=parameter_count(backbone)[''],
        backbone_flops=count_flops(backbone, (inputs, )),
        model_params=parameter_count(model)[''],
        model_flops=count_flops(TensorMode(model, samples), (inputs, )))


def report(rows: Dict[str, Dict[str, float]], shape) -> str:
    dense = rows['dense']
    lines = [
        f'Input shape: (3, {shape[0]}, {shape[1]}); FLOPs are '
        'multiply-adds, aggregation included; ratios against dense.',
        f'{"network":<9s} {"backbone params":>20s} '
        f'{"backbone FLOPs":>20s} {"model params":>20s} '
        f'{"model FLOPs":>20s}'
    ]
    for name, row in rows.items():
        cells = []
        for key, unit, scale in (('backbone_params', 'M',
                                  1e6), ('backbone_flops', 'G', 1e9),
                                 ('model_params', 'M', 1e6), ('model_flops',
                                                              'G', 1e9)):
            cell = (f'{row[key] / scale:.6f}{unit} '
                    f'({row[key] / dense[key]:.3f}x)')
            cells.append(f'{cell:>20s}')
        lines.append(f'{name:<9s} ' + ' '.join(cells))
    return '\n'.join(lines)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config of a topology model')
    parser.add_argument('--checkpoint', help='trained checkpoint (optional)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224, 224],
        help='input height and width (one value: square)')
    parser.add_argument(
        '--threshold',
        type=float,
        default=0.0,
        help='prune edges with |w| <= this (default: exact '
        'zeros only)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes H W or one size, positive integers, '
                     f'got {args.shape}')
    if args.threshold < 0:
        parser.error(f'--threshold must be >= 0, got {args.threshold}')
    shape = tuple(args.shape) * (3 - len(args.shape))

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        # strict: a config that does not match the checkpoint is an error
        load_checkpoint(
            model,
            args.checkpoint,
            map_location='cpu',
            strict=True,
            logger='silent')
    rows = dict(
        dense=measure(densified(model), shape), trained=measure(model, shape))
    _, backbone = topology_backbone(model)
    if any(stage.learnable for stage in backbone.stage_graphs):
        _, pruned = prune_model(cfg, model, args.threshold)
        rows['pruned'] = measure(pruned, shape)
    print(report(rows, shape))
    return 0


if __name__ == '__main__':
    sys.exit(main())
