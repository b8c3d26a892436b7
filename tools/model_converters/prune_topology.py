"""Turn a trained learnable-topology checkpoint into a deployable model.

    python tools/model_converters/prune_topology.py CONFIG CHECKPOINT OUT_DIR \
        [--threshold T]

writes ``OUT_DIR/<config name>_pruned.py`` and ``..._pruned.pth``: a normal
config whose backbone has fixed ``custom`` topologies (the edges whose
weight magnitude exceeds ``T``, with their weights) and a checkpoint without
the blocks that can no longer influence a stage's output. The pruned model
computes what the trained one computes with the edges at or below ``T`` set
to zero; mmdet's and mmpretrain's own ``tools/test.py`` read the pair.
OUT_DIR may be any path mmengine's file backends take (``s3://...``).

A checkpoint saved under mmengine's ``EMAHook`` (RTMDet's, YOLOX's
recipes) holds the averaged weights, whose pruned edges are small but not
zero; the edges to prune are then read from its raw weights
(``ema_state_dict``) and the averaged ones are deployed.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)
from mmtopo.models import topology_backbone
from mmtopo.utils.pruning import prune_model, save_pruned
from mmtopo.utils.validation import check_number, check_output_dir


def prune(config: str, checkpoint: str, threshold: float = 0.0):
    """The pruned config, the pruned model and the trained one (with an
    EMA checkpoint: its averaged weights, the raw ones' pruned edges at
    zero)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    # strict: a config that does not match the checkpoint is an error
    state = load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True, logger='silent')
    if 'ema_state_dict' in state:
        print(f'{checkpoint} holds averaged (EMA) weights: the edges to '
              'prune are read from its raw ones (ema_state_dict)')
    try:
        new_cfg, pruned = prune_model(cfg, model, threshold, checkpoint=state)
    except ValueError as err:
        raise ValueError(f'{checkpoint}: {err}') from None
    return new_cfg, pruned, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='the config the checkpoint was '
        'trained with')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument(
        'out_dir', help='folder for the pruned config and '
        'checkpoint')
    parser.add_argument(
        '--threshold',
        type=float,
        default=0.0,
        help='prune edges with |w| <= this (default: exact '
        'zeros only)')
    args = parser.parse_args(argv)
    try:
        check_output_dir('OUT_DIR', args.out_dir)
        check_number('--threshold', args.threshold, low=0)
    except ValueError as err:
        parser.error(str(err))
    cfg, pruned, model = prune(args.config, args.checkpoint, args.threshold)
    stem = osp.splitext(osp.basename(args.config))[0] + '_pruned'
    cfg_path, ckpt_path = save_pruned(
        cfg,
        pruned,
        args.out_dir,
        stem,
        meta=dict(pruned_from=args.checkpoint, threshold=args.threshold))
    before = sum(p.numel() for p in model.parameters())
    after = sum(p.numel() for p in pruned.parameters())
    _, backbone = topology_backbone(pruned)
    removed = backbone.removed_blocks()
    print(f'Pruned at threshold {args.threshold}: parameters {before} -> '
          f'{after} ({after / before:.4f}x); removed blocks: '
          f'{removed or "none"}')
    print(f'Config: {cfg_path}\nCheckpoint: {ckpt_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
