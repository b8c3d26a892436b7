"""From a supernet config to a deployed model at a reference's cost: the
steps ``tools/topology_search.py`` chains, each usable alone.

1. search: train the supernet config (a larger layout, densely wired,
   learning its edges under ``EdgeSparsityHook(target_flops=dict(of=...))``);
2. prune: the learned graph at threshold 0 as a fixed ``custom`` config and
   the weights it keeps (:func:`mmtopo.utils.pruning.prune_model`);
3. fine-tune: the pruned config with the supernet config's ``finetune_cfg``
   merged, from the pruned checkpoint;
4. evaluate on the held-out test split, and measure the final backbone
   against the reference backbone (FLOPs, parameters, inference time).
"""
import copy
from pathlib import Path
from statistics import median
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader

from ..apis import init_model
from ..engine.sparsity.budget import flops_at, params_of, reference_count
from ..models import topology_backbone
from ..utils.benchmark import interleaved_times
from ..utils.complexity import count_flops
from ..utils.pruning import prune_model, save_pruned

SPARSITY_HOOKS = ('EdgeSparsityHook', 'mmtopo.EdgeSparsityHook')


def sparsity_hook_cfg(cfg: Config) -> Optional[dict]:
    """The config's ``EdgeSparsityHook`` entry, if it has one."""
    hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h.get('type') in SPARSITY_HOOKS
    ]
    return hooks[0] if hooks else None


def reference_backbone_cfg(cfg: Config) -> Optional[dict]:
    """The backbone config the search's FLOPs budget is taken from
    (``target_flops=dict(of=...)``), if it has one."""
    hook = sparsity_hook_cfg(cfg)
    target = hook.get('target_flops') if hook else None
    return copy.deepcopy(target['of']) if isinstance(target, dict) and \
        'of' in target else None


def prune_checkpoint(config: str,
                     checkpoint: str,
                     out_dir: Path,
                     options: Sequence[str] = (),
                     threshold: float = 0.0) -> Tuple[str, str]:
    """Prune the trained ``checkpoint`` of ``config`` at ``threshold`` and
    save the fixed config and its weights in ``out_dir``; returns both
    paths. An EMA checkpoint's edges to prune come from its raw weights
    (see :func:`mmtopo.utils.pruning.prune_model`)."""
    cfg, model = init_model(config, checkpoint, list(options))
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    pruned_cfg, pruned = prune_model(cfg, model, threshold, checkpoint=state)
    return save_pruned(
        pruned_cfg,
        pruned,
        str(out_dir),
        'pruned',
        meta=dict(pruned_from=str(checkpoint), threshold=threshold))


def merged_config(base: str, overrides: dict, out: Path) -> str:
    """``base`` with ``overrides`` merged (``Config.merge_from_dict``:
    dicts merge key by key, a list replaces the list), written to
    ``out``; returns its path."""
    cfg = Config.fromfile(base)
    cfg.merge_from_dict(overrides)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(out))
    return str(out)


def finetune_config(pruned_config: str, finetune_cfg: dict,
                    pruned_checkpoint: str, out: Path) -> str:
    """The fine-tuning config: the pruned (fixed-graph) config with the
    search config's ``finetune_cfg`` merged and ``load_from`` the pruned
    checkpoint."""
    return merged_config(pruned_config,
                         dict(finetune_cfg, load_from=pruned_checkpoint), out)


def build_backbone(cfg: dict, scope: str) -> torch.nn.Module:
    """A backbone from its config, in the registry scope of its model."""
    init_default_scope(scope)
    return MODELS.build(copy.deepcopy(cfg))


def backbone_costs(backbone: torch.nn.Module,
                   input_shape: Sequence[int]) -> Dict[str, float]:
    """FLOPs (mmengine's counter, aggregations included) and parameters."""
    image = torch.zeros(1, *input_shape)
    return dict(
        flops=float(count_flops(backbone, (image, ))),
        params=float(parameter_count(backbone)['']))


def search_budget_flops(cfg: Config, input_shape: Sequence[int]) -> float:
    """The FLOPs the search's budget allows, counted at ``input_shape``
    as its ``EdgeSparsityHook`` counts them (the reference's, times
    ``target_flops``' ``ratio``)."""
    target = sparsity_hook_cfg(cfg)['target_flops']
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return reference_count(target, 'flops', flops_at(input_shape)) * float(
        target.get('ratio', 1.0))


def search_budget_params(cfg: Config) -> Optional[float]:
    """The parameters the search's budget allows (its ``target_params``:
    the reference's, times its ``ratio``), or None when it has no
    parameter target."""
    target = sparsity_hook_cfg(cfg).get('target_params')
    if target is None:
        return None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return reference_count(target, 'params', params_of) * float(
        target.get('ratio', 1.0))


def inference_ratios(model: torch.nn.Module,
                     reference: torch.nn.Module,
                     input_shape: Sequence[int],
                     batch_sizes: Sequence[int] = (1, 8),
                     rounds: int = 15,
                     warmup: int = 3) -> Dict[int, Dict[str, float]]:
    """Eval-mode forward time of ``model`` against ``reference``, per batch
    size: both timed in turn (:func:`interleaved_times`); the median time
    of each and the median of the per-round ratios."""
    model.eval()
    reference.eval()
    out = {}
    for batch in batch_sizes:
        x = torch.randn(batch, *input_shape)

        def step(net):

            def run():
                with torch.no_grad():
                    net(x)

            return run

        times = interleaved_times(
            dict(model=step(model), reference=step(reference)), rounds, warmup,
            'cpu')
        ratios = [a / b for a, b in zip(times['model'], times['reference'])]
        out[batch] = dict(
            model=median(times['model']),
            reference=median(times['reference']),
            ratio=median(ratios))
    return out


def deployment_report(config: str,
                      checkpoint: str,
                      reference: dict,
                      input_shape: Sequence[int],
                      rounds: int = 15) -> Dict[str, float]:
    """The deployed backbone of ``config`` / ``checkpoint`` against the
    ``reference`` backbone config: FLOPs, parameters, their ratios, and
    the inference time ratios at batch 1 and 8."""
    cfg, model = init_model(config, checkpoint)
    _, backbone = topology_backbone(model)
    ref = build_backbone(reference, cfg.get('default_scope', 'mmdet'))
    ours, theirs = (backbone_costs(backbone, input_shape),
                    backbone_costs(ref, input_shape))
    report = dict(
        flops=ours['flops'],
        params=ours['params'],
        reference_flops=theirs['flops'],
        reference_params=theirs['params'],
        flops_ratio=ours['flops'] / theirs['flops'],
        params_ratio=ours['params'] / theirs['params'])
    for batch, t in inference_ratios(
            backbone, ref, input_shape, rounds=rounds).items():
        report[f'time_ratio_b{batch}'] = t['ratio']
        report[f'time_b{batch}'] = t['model']
    return report
