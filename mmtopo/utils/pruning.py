"""From a trained learnable topology to a deployable model: the pruned
config (fixed ``custom`` graphs, dead blocks removed) and its weights."""
import copy
import io
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.registry import MODELS

from ..models.backbones.rewiring import topology_backbone


def pruned_config(cfg: Config, specs) -> Config:
    """``cfg`` with fixed ``custom`` topologies, no pretrained init and no
    sparsity hook (nothing left to learn)."""
    cfg = copy.deepcopy(cfg)
    backbone = cfg.model.backbone
    backbone.topology = [dict(spec, learnable=False) for spec in specs]
    backbone.init_cfg = None
    backbone.pop('pretrained', None)
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h['type'] not in ('EdgeSparsityHook', 'mmtopo.EdgeSparsityHook')
    ]
    cfg.load_from = None
    return cfg


def prune_model(
        cfg: Config,
        model: torch.nn.Module,
        threshold: float = 0.0,
        checkpoint: Optional[dict] = None) -> Tuple[Config, torch.nn.Module]:
    """The pruned config of ``model`` (built from ``cfg``, trained) at
    ``threshold``, and the pruned model holding its weights.

    ``checkpoint``: the dict ``model`` was loaded from. An EMA one's edges
    to prune are those its raw weights have at or below ``threshold``
    (:func:`take_pruned_edges_from_raw`; ``model`` is changed).
    """
    if checkpoint is not None and 'ema_state_dict' in checkpoint:
        take_pruned_edges_from_raw(model, checkpoint, threshold)
        threshold = 0.0
    name, backbone = topology_backbone(model)
    if not any(stage.learnable for stage in backbone.stage_graphs):
        raise ValueError(f'the {name} has no learnable edges (a fixed '
                         'topology), so nothing was learned to prune')
    return subgraph_model(cfg, model, backbone.export_topology(threshold))


def take_pruned_edges_from_raw(model: torch.nn.Module,
                               checkpoint: dict,
                               threshold: float = 0.0) -> int:
    """Zero the edges of ``model`` (loaded with an averaged checkpoint's
    ``state_dict``) whose raw weights are at or below ``threshold``; the
    number zeroed.

    mmengine's ``EMAHook`` saves the averaged weights as ``state_dict`` and
    the raw ones under ``ema_state_dict`` (``module.``-prefixed). The
    sparsity step zeroes raw edges exactly, while their averages only decay
    towards zero, so which edges were pruned is read from the raw weights;
    the deployed model keeps the averaged ones, as mmdet's testing would.
    A checkpoint without ``ema_state_dict`` changes nothing (returns 0).
    """
    raw = checkpoint.get('ema_state_dict')
    if raw is None:
        return 0
    zeroed = 0
    with torch.no_grad():
        for name, weights in model.named_parameters():
            if not name.endswith('edge_weights'):
                continue
            key = 'module.' + name
            if key not in raw:
                raise ValueError(f'ema_state_dict has no {key!r}: it is not '
                                 'the raw copy of this model\'s weights')
            cut = (raw[key].abs() <= threshold) & (weights != 0)
            weights[cut] = 0.0
            zeroed += int(cut.sum())
    return zeroed


def subgraph_model(cfg: Config, model: torch.nn.Module,
                   specs) -> Tuple[Config, torch.nn.Module]:
    """The config of ``model`` (built from ``cfg``) with its backbone's
    graph fixed to the ``custom`` ``specs`` (a sub-graph of its own: the
    pruned one, or any other), and that model holding ``model``'s weights
    of every block and router it keeps."""
    name, backbone = topology_backbone(model)
    new_cfg = pruned_config(cfg, specs)
    pruned = MODELS.build(new_cfg.model)
    own = pruned.state_dict()
    state = {
        k: v
        for k, v in model.state_dict().items() if k in own and 'edge_' not in k
    }
    _, pruned_backbone = topology_backbone(pruned)
    for stage_name, ours, theirs in zip(backbone.stage_names,
                                        pruned_backbone.stage_graphs,
                                        backbone.stage_graphs):
        ours.adapt_routers(state, f'{name}.{stage_name}.', theirs.edge_mask)
    missing = [k for k in own if k not in state and 'edge_' not in k]
    if missing:  # cannot happen unless the two builds disagree
        raise RuntimeError(f'pruned model has weights the checkpoint lacks: '
                           f'{missing[:5]}')
    state.update({k: v for k, v in own.items() if 'edge_' in k})
    pruned.load_state_dict(state, strict=True)
    return new_cfg, pruned


def save_pruned(cfg: Config, model: torch.nn.Module, out_dir: str, stem: str,
                meta: dict) -> Tuple[str, str]:
    """Write ``OUT_DIR/<stem>.py`` and ``<stem>.pth`` through mmengine's
    file backends (so ``s3://...`` works); returns both paths."""
    backend = get_file_backend(out_dir)
    cfg_path = backend.join_path(out_dir, stem + '.py')
    ckpt_path = backend.join_path(out_dir, stem + '.pth')
    backend.put_text(cfg.pretty_text, cfg_path)
    buffer = io.BytesIO()
    torch.save(dict(state_dict=model.state_dict(), meta=meta), buffer)
    backend.put(buffer.getvalue(), ckpt_path)
    return cfg_path, ckpt_path
