"""The stage function as ``torch.compile`` traces it: the edge weights stay
on the device, so the graph has no break and does not change when a weight
does, and the compiler fuses each node's sum into one pass."""
from typing import TYPE_CHECKING

import torch

from .edge_functions import edge_grad_scale

if TYPE_CHECKING:
    from .stage_graph import StageGraph


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call. ``torch.compiler``
    has ``is_compiling`` from torch 2.3; torch 2.1 and 2.2 have it only
    as ``torch._dynamo.is_compiling``."""
    check = getattr(getattr(torch, 'compiler', None), 'is_compiling', None)
    if check is None:
        from torch._dynamo import is_compiling as check
    return check()


def _scale_grad(t: torch.Tensor, scale: float) -> torch.Tensor:
    """``t`` itself in the forward pass; ``scale`` times its gradient."""
    fixed = t.detach()
    return fixed + (t - fixed) * scale


def traceable_forward(stage: 'StageGraph', x: torch.Tensor) -> torch.Tensor:
    """``stage``'s function with its weights kept on the device: what
    ``torch.compile`` traces (no host read, so no graph break, and the
    graph does not change when a weight does).

    Every edge is computed, and the compiler fuses each node's sum into
    one pass. A node without an active input is switched off by
    multiplying its output by 0 (``StageGraph.forward`` does not run it),
    and so is the output of a stage cut apart: outputs and gradients are
    the same (the property tests check both paths), but its block still
    runs, and in training its norm layers' running statistics see the zero
    input.
    Edges get their gradient times :func:`edge_grad_scale`, as from
    :class:`~.edge_functions.FanOut`.
    """
    weights = stage.edge_weights
    # blocks by attribute (torch 2.1's dynamo fails on StageGraph.__getitem__)
    outputs = {0: getattr(stage, '0')(x)}
    alive = {0: torch.ones((), dtype=torch.bool, device=x.device)}
    if stage.learnable:
        scale = edge_grad_scale(outputs[0], stage.edge_grad)
        if scale != 1.0:
            weights = _scale_grad(weights, scale)
        if torch.is_grad_enabled() and not stage.training:
            # as in StageGraph.forward: outside training a zero edge is
            # not there
            weights = torch.where(weights != 0, weights,
                                  weights.detach())
    last = len(stage)
    for j in range(1, last + 1):
        sources = [i for i in stage._sources[j] if i in outputs]
        if not sources:  # a removed block
            continue
        node_in = None
        for i in sources:
            term = weights[i, j] * outputs[i]
            node_in = term if node_in is None else node_in + term
        active = torch.stack([(weights[i, j] != 0) & alive[i]
                              for i in sources]).any()
        if j == last:  # cut apart: constant zero, as in forward
            return node_in * active
        alive[j] = active
        outputs[j] = getattr(stage, str(j))(node_in) * active
    raise AssertionError('a checked topology always reaches its output')
