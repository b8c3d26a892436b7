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
"""
import argparse
import copy
import io
import os.path as osp
import sys
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)


def topology_backbone(model) -> Tuple[str, torch.nn.Module]:
    """(name, module) of the model's TopoResNet-like backbone."""
    found = [(name, m) for name, m in model.named_modules()
             if hasattr(m, 'export_topology')]
    if not found:
        raise ValueError('the model has no TopoResNet backbone: there is no '
                         'topology to prune')
    return found[0]


def pruned_config(cfg: Config, specs) -> Config:
    """``cfg`` with fixed ``custom`` topologies, no pretrained init and no
    sparsity hook (nothing left to learn)."""
    cfg = copy.deepcopy(cfg)
    backbone = cfg.model.backbone
    backbone.topology = [dict(spec, learnable=False) for spec in specs]
    backbone.init_cfg = None
    backbone.pop('pretrained', None)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] not in ('EdgeSparsityHook',
                                             'mmtopo.EdgeSparsityHook')]
    cfg.load_from = None
    return cfg


def prune(config: str, checkpoint: str, threshold: float = 0.0):
    """The pruned config and the pruned model (weights loaded)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    # strict: a config that does not match the checkpoint is an error
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                    logger='silent')
    name, backbone = topology_backbone(model)
    if not any(stage.learnable for stage in backbone.stages):
        raise ValueError(f'{checkpoint}: the {name} has no learnable edges '
                         '(a fixed topology), so nothing was learned to prune')
    specs = backbone.export_topology(threshold)
    new_cfg = pruned_config(cfg, specs)
    pruned = MODELS.build(new_cfg.model)
    own = pruned.state_dict()
    state = {k: v for k, v in model.state_dict().items()
             if k in own and 'edge_' not in k}
    missing = [k for k in own if k not in state and 'edge_' not in k]
    if missing:  # cannot happen unless the two builds disagree
        raise RuntimeError(f'pruned model has weights the checkpoint lacks: '
                           f'{missing[:5]}')
    state.update({k: v for k, v in own.items() if 'edge_' in k})
    pruned.load_state_dict(state, strict=True)
    return new_cfg, pruned, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out_dir', help='folder for the pruned config and '
                        'checkpoint')
    parser.add_argument('--threshold', type=float, default=0.0,
                        help='prune edges with |w| <= this (default: exact '
                        'zeros only)')
    args = parser.parse_args(argv)
    cfg, pruned, model = prune(args.config, args.checkpoint, args.threshold)
    stem = osp.splitext(osp.basename(args.config))[0] + '_pruned'
    backend = get_file_backend(args.out_dir)
    cfg_path = backend.join_path(args.out_dir, stem + '.py')
    ckpt_path = backend.join_path(args.out_dir, stem + '.pth')
    backend.put_text(cfg.pretty_text, cfg_path)
    buffer = io.BytesIO()
    torch.save(dict(state_dict=pruned.state_dict(),
                    meta=dict(pruned_from=args.checkpoint,
                              threshold=args.threshold)), buffer)
    backend.put(buffer.getvalue(), ckpt_path)
    before = sum(p.numel() for p in model.parameters())
    after = sum(p.numel() for p in pruned.parameters())
    _, backbone = topology_backbone(pruned)
    removed = {f'layer{k + 1}': list(s.removed)
               for k, s in enumerate(backbone.stages) if s.removed}
    print(f'Pruned at threshold {args.threshold}: parameters {before} -> '
          f'{after} ({after / before:.4f}x); removed blocks: '
          f'{removed or "none"}')
    print(f'Config: {cfg_path}\nCheckpoint: {ckpt_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
