"""The stage graph: blocks as DAG nodes, edges as weighted sums.

Cost model. A weighted sum of node outputs is pure memory traffic, and in a
ResNet the blocks' own element-wise work is of the same order, so a naive
``x = x + w * y`` loop costs 15-25% of the whole network. The aggregation
here therefore

* passes a node output straight through when it is the only input and its
  weight is 1 (the residual wiring is then literally ResNet);
* accumulates in place and skips zero weights and unit multiplies
  (:class:`WeightedSum`);
* computes all edge gradients of a node as dot products, without
  materialising ``w * grad`` products it does not need;
* does not keep the summed input of a block for backward: the block's convs
  would store it, so it is recomputed from the node outputs, which the blocks
  store anyway (:func:`recompute_sums`).
"""
from contextlib import contextmanager
from typing import Iterator, List, Sequence

import torch
from torch import nn

from .topology import StageTopology

# Attribute put on a summed tensor: the inputs and weights it was made from,
# so that backward can rebuild it instead of keeping it.
_RECIPE = '_mmtopo_sum_recipe'


def weighted_sum(inputs: Sequence[torch.Tensor],
                 weights: Sequence[float]) -> torch.Tensor:
    """``sum_k weights[k] * inputs[k]`` in one buffer, skipping zeros.

    A single input of weight 1 is returned as it is (no copy).
    """
    terms = [(x, w) for x, w in zip(inputs, weights) if w != 0.0]
    if not terms:
        return torch.zeros_like(inputs[0])
    if len(terms) == 1 and terms[0][1] == 1.0:
        return terms[0][0]
    first, w0 = terms[0]
    out = first.clone() if w0 == 1.0 else torch.mul(first, w0)
    for x, w in terms[1:]:
        out.add_(x, alpha=w)
    return out


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype in (torch.float16, torch.bfloat16):
        # an fp16 accumulator overflows on feature maps of millions of values
        return torch.sum(a * b, dtype=torch.float32)
    return torch.dot(a.reshape(-1), b.reshape(-1))


class WeightedSum(torch.autograd.Function):
    """``x = sum_k w_k * y_k`` with gradients for both ``w`` and ``y``."""

    @staticmethod
    def forward(ctx, weights: torch.Tensor, *inputs: torch.Tensor):
        values = weights.tolist()
        ctx.values = values
        ctx.weight_dtype = weights.dtype
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(*inputs)
        return weighted_sum(inputs, values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_weights = None
        if ctx.needs_input_grad[0]:
            grad = grad.contiguous()
            grad_weights = torch.stack([
                _dot(grad, y.contiguous()) for y in ctx.saved_tensors
            ]).to(ctx.weight_dtype)
        grad_inputs = []
        for w, needed in zip(ctx.values, ctx.needs_input_grad[1:]):
            if not needed or w == 0.0:
                grad_inputs.append(None)
            else:
                grad_inputs.append(grad if w == 1.0 else grad * w)
        return (grad_weights, *grad_inputs)


def _pack(tensor: torch.Tensor):
    recipe = getattr(tensor, _RECIPE, None)
    return tensor if recipe is None else recipe


def _unpack(packed):
    if isinstance(packed, torch.Tensor):
        return packed
    inputs, values = packed
    return weighted_sum(inputs, values)


@contextmanager
def recompute_sums() -> Iterator[None]:
    """While active, a summed tensor that autograd saves for backward is
    replaced by its recipe and rebuilt when backward needs it."""
    with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
        yield


class StageGraph(nn.Module):
    """A ResNet stage whose blocks are the nodes of a DAG (DESIGN.md §1).

    Node 0 is the first block (stride and channel change); node ``j`` in
    ``1..n-1`` runs block ``j`` on the weighted sum of its inputs; node ``n``
    is the weighted sum returned as the stage output.

    The blocks are registered as ``'0'``, ``'1'``, ... so parameter names
    match mmdet's ``ResLayer`` and stock checkpoints load unchanged.

    Args:
        blocks: the stage's blocks, in order.
        topology: the edge mask, initial weights and whether they learn.
    """

    def __init__(self, blocks: Sequence[nn.Module], topology: StageTopology):
        super().__init__()
        num_nodes = len(blocks) + 1
        if topology.mask.shape != (num_nodes, num_nodes):
            raise ValueError(
                f'topology mask of shape {tuple(topology.mask.shape)} does '
                f'not fit a stage of {len(blocks)} blocks')
        for i, block in enumerate(blocks):
            self.add_module(str(i), block)
        self.register_buffer('edge_mask', topology.mask.clone())
        weights = topology.weights.clone().float()
        if topology.learnable:
            self.edge_weights = nn.Parameter(weights)
        else:
            self.register_buffer('edge_weights', weights)
        self._sources: List[List[int]] = [
            self.edge_mask[:, j].nonzero().flatten().tolist()
            for j in range(num_nodes)
        ]

    # -- behave like the nn.Sequential ResLayer it replaces ----------------
    def __len__(self) -> int:
        return self.edge_mask.shape[0] - 1

    def __getitem__(self, idx: int) -> nn.Module:
        return self._modules[str(range(len(self))[idx])]

    def __iter__(self) -> Iterator[nn.Module]:
        return (self[i] for i in range(len(self)))

    @property
    def learnable(self) -> bool:
        return isinstance(self.edge_weights, nn.Parameter)

    def edges(self) -> List[tuple]:
        """``(i, j, weight)`` for every edge in the mask."""
        weights = self.edge_weights.detach()
        return [(i, j, float(weights[i, j])) for j, srcs in
                enumerate(self._sources) for i in srcs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.edge_weights
        values = weights.detach().tolist()
        track = torch.is_grad_enabled()
        outputs = [self[0](x)]
        for j in range(1, len(self) + 1):
            srcs = self._sources[j]
            inputs = [outputs[i] for i in srcs]
            fixed_identity = (not self.learnable and len(srcs) == 1
                              and values[srcs[0]][j] == 1.0)
            if fixed_identity:
                node_in = inputs[0]
            else:
                node_in = WeightedSum.apply(weights[srcs, j], *inputs)
            if j == len(self):
                return node_in
            if track and not fixed_identity:
                setattr(node_in, _RECIPE,
                        (inputs, [values[i][j] for i in srcs]))
                with recompute_sums():
                    outputs.append(self[j](node_in))
                delattr(node_in, _RECIPE)
            else:
                outputs.append(self[j](node_in))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + 'edge_mask'
        if key in state_dict:
            theirs = state_dict[key]
            if theirs.shape != self.edge_mask.shape or not torch.equal(
                    theirs.bool().cpu(), self.edge_mask.cpu()):
                raise ValueError(
                    f'checkpoint graph does not fit the model at {key!r}: '
                    f'checkpoint has {_describe(theirs)}, model has '
                    f'{_describe(self.edge_mask)}')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)


def _describe(mask: torch.Tensor) -> str:
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return f'a mask of shape {tuple(mask.shape)}'
    edges = [tuple(e) for e in mask.bool().nonzero().tolist()]
    return f'{mask.shape[0]} nodes with edges {edges}'
