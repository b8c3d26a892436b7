"""How alike the node outputs of each stage are: whether the edges have
anything to choose between.

Every in-edge of a node carries an earlier node's output. Where those
outputs are (nearly) the same feature map, as they are at the start with
``zero_init_residual`` (every residual branch starts at zero, so every block
passes its input through), the loss depends only on the sum of a node's
in-edge weights, each in-edge gets the same gradient, and no wiring can be
learned from the data: the sparsity step then prunes by init alone.
"""
from typing import Dict, List

import torch
from torch import nn

from mmtopo.models.layers import StageGraph


def _correlation(outputs: List[torch.Tensor]) -> torch.Tensor:
    """Pearson correlations between flattened tensors, as a matrix."""
    flat = torch.stack([y.detach().double().flatten() for y in outputs])
    flat = flat - flat.mean(dim=1, keepdim=True)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return flat @ flat.T


@torch.no_grad()
def node_output_correlation(backbone: nn.Module,
                            inputs: torch.Tensor) -> Dict[str, float]:
    """The mean pairwise correlation of the node outputs of each stage of
    ``backbone`` on ``inputs``, by stage name (over the whole batch, in eval
    mode; nodes a pruned graph does not run are left out). 1 means the
    stage's nodes all carry the same feature map."""
    outputs: Dict[str, List[torch.Tensor]] = {}
    handles = []
    stages = [(name, m) for name, m in backbone.named_modules()
              if isinstance(m, StageGraph)]
    for name, stage in stages:
        outputs[name] = []
        for block in stage:
            handles.append(
                block.register_forward_hook(lambda _m, _i, out, store=outputs[
                    name]: store.append(out)))
    training = backbone.training
    backbone.eval()
    try:
        backbone(inputs)
    finally:
        backbone.train(training)
        for handle in handles:
            handle.remove()
    result = {}
    for name, _ in stages:
        if len(outputs[name]) < 2:
            continue
        corr = _correlation(outputs[name])
        off = corr[~torch.eye(len(corr), dtype=torch.bool)]
        result[name] = float(off.mean())
    return result
