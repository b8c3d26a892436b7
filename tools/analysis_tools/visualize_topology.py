"""Draw the topology a checkpoint learned: one panel per stage.

    python tools/analysis_tools/visualize_topology.py CONFIG CHECKPOINT \
        --out work_dirs/topology.png

Works for detection (mmdet) and classification (mmpretrain) configs.
"""
import argparse
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)
from mmtopo.visualization import draw_topology


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--dpi', type=int, default=110)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    # strict: a config that does not match the checkpoint is an error
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    backbones = [(name, m) for name, m in model.named_modules()
                 if hasattr(m, 'topology_graphs')]
    if not backbones:
        raise ValueError(f'{args.config}: the model has no topology '
                         'backbone (TopoResNet, TopoRegNet, ...), so there '
                         'is no topology to draw')
    name, backbone = backbones[0]
    fig = draw_topology(backbone.topology_graphs(),
                        title=f'{name} of {args.checkpoint}')
    fig.savefig(args.out, dpi=args.dpi)
    print(f'Topology drawn to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
