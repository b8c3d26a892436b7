"""The autograd functions of a stage's weighted sums.

Cost model. A weighted sum of node outputs is pure memory traffic, and in a
ResNet the blocks' own element-wise work is of the same order, so a naive
``x = x + w * y`` loop costs 15-25% of the whole network. The aggregation
here therefore

* passes a node output straight through when it is the only input and its
  weight is 1 (the residual wiring is then literally ResNet);
* accumulates in place and skips zero weights and unit multiplies
  (:class:`WeightedSum`);
* meets all gradients of a node output in one place (:class:`FanOut`),
  without materialising a ``w * grad`` product per edge. On a GPU, where
  two or more of its out-edges have non-zero weights, the gradients are
  stacked once and both the gradient it sends back and its edge gradients
  are one matrix-vector product each (ops, so kernel launches, per node,
  not per edge); on CPU, and wherever a stack does not apply, a gradient
  passes through, is scaled once or is summed in place, and the edge
  gradients are dot products (:func:`stacks_gradients` says why);
* assembles a backbone's edge gradients once, in one stack
  (:class:`EdgeGradients`), not row by row nor stage by stage;
* does not keep the summed input of a block for backward: the block's convs
  would store it, so it is recomputed from the node outputs, which the blocks
  store anyway (:func:`recompute_sums`).

Edge gradients are the true gradients divided by ``sqrt(C)`` by default
(``edge_grad='rms'``). An edge weight scales a whole feature map of ``C``
channels, so its gradient ``<dL/dx_j, y_i>`` is the sum of what ``C``
per-channel scales (a norm layer's gammas) would each get: their signal
largely cancels while their noise adds up, so the true gradient carries
about ``sqrt(C)`` times the step noise of one per-channel scale. Dividing by
``sqrt(C)`` gives an edge the step noise of one gamma at the same learning
rate; ``'sum'`` (the true gradient) and ``'mean'`` (divided by ``C``) are
the alternatives. As a fixed diagonal preconditioner the rule changes the
step under SGD only (Adam-style optimizers normalise it away). The
sparsity hook's threshold ``lr * lambda`` is on the scale of the step as
taken. docs/design.md gives the measurements behind the default.
"""
import functools
import math
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence

import torch

from .compiling import is_compiling

# Attribute put on a summed tensor: the inputs and weights it was made from,
# so that backward can rebuild it instead of keeping it.
_RECIPE = '_mmtopo_sum_recipe'


def weighted_sum(inputs: Sequence[torch.Tensor],
                 weights: Sequence[float]) -> torch.Tensor:
    """``sum_k weights[k] * inputs[k]`` in one new buffer, skipping zeros.

    A single input of weight 1 is returned as it is (no copy).
    """
    terms = [(x, w) for x, w in zip(inputs, weights) if w != 0.0]
    if not terms:
        return torch.zeros_like(inputs[0])
    if len(terms) == 1 and terms[0][1] == 1.0:
        return terms[0][0]
    (first, w0), rest = terms[0], terms[1:]
    if w0 == 1.0 and rest:  # one pass instead of a copy and an add
        (second, w1), rest = rest[0], rest[1:]
        out = torch.add(first, second, alpha=w1)
    else:
        out = torch.mul(first, w0)
    for x, w in rest:
        out.add_(x, alpha=w)
    return out


# how an edge's gradient is reduced over the channels of its feature map
EDGE_GRADS = ('sum', 'rms', 'mean')


def edge_grad_scale(feature: torch.Tensor,
                    edge_grad: str = 'rms',
                    channel_dim: int = 1) -> float:
    """What the true gradient of an edge carrying ``feature`` (channels at
    ``channel_dim``: 1 for ``N, C, H, W`` maps, -1 for ``N, L, C`` tokens)
    is multiplied by before it reaches ``edge_weights.grad``: 1 for
    ``'sum'`` (the true gradient), ``1 / sqrt(C)`` for ``'rms'``, ``1 / C``
    for ``'mean'`` (the channel mean)."""
    channels = feature.shape[channel_dim]
    if edge_grad == 'sum':
        return 1.0
    if edge_grad == 'rms':
        return 1.0 / math.sqrt(channels)
    if edge_grad == 'mean':
        return 1.0 / channels
    raise ValueError(f'edge_grad must be one of {EDGE_GRADS}, got '
                     f'{edge_grad!r}')


def _flat(t: torch.Tensor) -> Optional[torch.Tensor]:
    """A 1-D view of ``t`` in memory order (contiguous or channels_last), or
    None if its layout has gaps or broadcasts (a copy would be needed)."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).view(-1)
    return None


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum(a * b)`` in at least float32, without copying either operand
    when both have the same dense layout (``channels_last`` included)."""
    if a.dtype in (torch.float16, torch.bfloat16):
        # an fp16 accumulator overflows on feature maps of millions of values
        return torch.sum(a * b, dtype=torch.float32)
    flat_a, flat_b = _flat(a), _flat(b)
    if flat_a is None or flat_b is None or a.stride() != b.stride():
        return torch.sum(a * b)  # e.g. the broadcast gradient of a mean
    return torch.dot(flat_a, flat_b)


class WeightedSum(torch.autograd.Function):
    """The input of a node: ``x_j = sum_i w_ij * y_i``.

    Backward hands ``dL/dx_j`` unscaled to every input: each input is a
    :class:`FanOut` view, and the fan-out of the source applies the edge
    weights there, where all gradients of one source meet.
    """

    @staticmethod
    def forward(ctx, values: List[float], *inputs: torch.Tensor):
        return weighted_sum(inputs, values)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (None, *(grad for _ in ctx.needs_input_grad[1:]))


class EdgeSink:
    """Where the :class:`FanOut` s of one stage leave its edge gradients:
    the dot products by edge ``(i, j)``, and the factor
    (:func:`edge_grad_scale`) they are multiplied by."""

    def __init__(self, scale: float = 1.0):
        self.dots: dict = {}
        self.scale = scale


@functools.lru_cache(maxsize=32)
def _zero(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A 0-d zero, made once per device and dtype: the entries of the edges
    a stage does not have, with no op per backward."""
    return torch.zeros((), device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _scale_vector(scales: tuple, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """``(scale, count)`` pairs as one vector, made once per layout."""
    return torch.tensor(
        [scale for scale, count in scales for _ in range(count)],
        device=device,
        dtype=dtype)


class EdgeGradients(torch.autograd.Function):
    """The edge weights of one or more stages as their :class:`FanOut` s
    take them (views).

    Each fan-out leaves the dot products of its edges in its stage's
    :class:`EdgeSink` rather than returning a gradient of its own (a row of
    zeros per node, a ``select`` backward and an accumulation each). The
    backward here runs after all of them and assembles the gradients of all
    the stages in one stack and one multiplication by the stages' scales;
    a backbone applies it once for all its stages
    (:func:`edge_values_read`).
    """

    @staticmethod
    def forward(ctx, sinks: Sequence[EdgeSink], *weights: torch.Tensor):
        ctx.sinks = sinks
        ctx.shapes = [w.shape for w in weights]
        ctx.weight_dtypes = [w.dtype for w in weights]
        ctx.set_materialize_grads(False)
        return tuple(w.view_as(w) for w in weights)

    @staticmethod
    def backward(ctx, *_):
        # a stage none of whose fan-outs ran backward (its output unused)
        # gets no gradient, as an unused parameter does
        used = [k for k, sink in enumerate(ctx.sinks) if sink.dots]
        grads = [None] * len(ctx.sinks)
        if not used:
            return (None, *grads)
        first = next(iter(ctx.sinks[used[0]].dots.values()))
        zero = _zero(first.device, first.dtype)
        entries, scales = [], []
        for k in used:
            (rows, cols), sink = ctx.shapes[k], ctx.sinks[k]
            block = [zero] * (rows * cols)
            for (i, j), value in sink.dots.items():
                block[i * cols + j] = value
            sink.dots.clear()  # a second backward (retain_graph) refills it
            entries += block
            scales.append((sink.scale, rows * cols))
        stacked = torch.stack(entries)
        if any(scale != 1.0 for scale, _ in scales):
            stacked.mul_(
                _scale_vector(tuple(scales), stacked.device, stacked.dtype))
        start = 0
        for k in used:
            rows, cols = ctx.shapes[k]
            grads[k] = stacked[start:start + rows * cols].view(rows, cols).to(
                ctx.weight_dtypes[k])
            start += rows * cols
        return (None, *grads)


# FanOut's stacking, forced on or off (tests, op counts); None: by device
_forced_stacking: Optional[bool] = None


def stacks_gradients(device: torch.device) -> bool:
    """Whether :class:`FanOut` stacks a node's gradients on ``device``.

    Everywhere but on the CPU. On a GPU in eager mode a step is bound by
    kernel launches, which the stack cuts. On the CPU there are no launches
    to save, and the stack is a fresh buffer of ``k`` feature maps per node
    that costs more than the in-place sums and dot products it replaces
    (docs/design.md has the timings).
    """
    if _forced_stacking is not None:
        return _forced_stacking
    return device.type != 'cpu'


@contextmanager
def stacked_fan_out(enabled: Optional[bool]) -> Iterator[None]:
    """Force :class:`FanOut`'s stacking on or off for every device while
    active (None: by device again; not thread-safe): to test both backward
    paths on any machine, and to count or time the GPU's path on a CPU."""
    global _forced_stacking
    previous, _forced_stacking = _forced_stacking, enabled
    try:
        yield
    finally:
        _forced_stacking = previous


class FanOut(torch.autograd.Function):
    """One view of a node output ``y_i`` per edge ``i -> j`` leaving it.

    Backward receives ``g_j = dL/dx_j`` from every consumer at once, so it
    can form ``dL/dy_i = sum_j w_ij g_j`` and the edge gradients
    ``dL/dw_ij = <g_j, y_i>`` (left in ``dots`` for :class:`EdgeGradients`)
    in few ops. Where two or more weights are non-zero and the device
    stacks (:func:`stacks_gradients`), the ``g_j`` are stacked once and
    both come out of one matrix-vector product each (three ops in all);
    otherwise a gradient is passed on as it is, scaled once or summed in
    place, and the edge gradients are dot products.
    """

    @staticmethod
    def forward(ctx, edges: torch.Tensor, source_index: int,
                columns: List[int], values: List[float], dots: dict,
                source: torch.Tensor):
        """``edges``: the stage's :class:`EdgeGradients` output (or fixed
        weights); ``source_index``: the node ``i``; ``columns``: its
        consumers; ``values``: their weights as floats; ``dots``: where the
        edge gradients go, keyed ``(i, j)``."""
        ctx.source_index, ctx.columns = source_index, columns
        ctx.values, ctx.dots = values, dots
        ctx.edges = edges.detach()  # the weights on the device, for a stack
        ctx.set_materialize_grads(False)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(source)
        return tuple(source.view_as(source) for _ in values)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        need_dots = ctx.needs_input_grad[0]
        need_source = ctx.needs_input_grad[5]
        source = ctx.saved_tensors[0] if need_dots else None
        if need_source and sum(w != 0.0 for w in ctx.values) >= 2 and \
                stacks_gradients(ctx.edges.device):
            stacked = _stack_flat(grads, source)
            if stacked is not None:
                return _stacked_backward(ctx, stacked, grads[0], source)
        grad_source = None
        if need_dots:
            for column, g in zip(ctx.columns, grads):
                if g is not None:
                    ctx.dots[ctx.source_index, column] = _dot(g, source)
        if need_source:
            terms = [(g, w) for g, w in zip(grads, ctx.values)
                     if g is not None and w != 0.0]
            if terms:
                grad_source = weighted_sum(*zip(*terms))
        return None, None, None, None, None, grad_source


def _stack_flat(grads: Sequence[Optional[torch.Tensor]],
                source: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The gradients as the rows of one ``(k, M)`` matrix, each in memory
    order; None where a stack does not apply: a missing gradient, fp16 /
    bf16 (whose products need a float32 accumulator), or layouts that
    differ (from each other or from ``source``, which the rows meet)."""
    first = grads[0]
    if first is None or first.dtype not in (torch.float32, torch.float64):
        return None
    layout = first.stride()
    if any(g is None or g.stride() != layout or g.dtype != first.dtype
           for g in grads) or (source is not None and
                               (source.stride() != layout
                                or source.dtype != first.dtype)):
        return None
    rows = [_flat(g) for g in grads]
    if rows[0] is None:
        return None
    return torch.stack(rows)


def _unflat(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``flat``, in the memory order of ``like``, in its shape and layout."""
    if like.is_contiguous():
        return flat.view(like.shape)
    n, c, h, w = like.shape  # channels_last (see _flat)
    return flat.view(n, h, w, c).permute(0, 3, 1, 2)


def _stacked_backward(ctx, stacked: torch.Tensor, like: torch.Tensor,
                      source: Optional[torch.Tensor]):
    """FanOut's backward from the stacked gradients ``G``: ``dL/dy_i =
    G^T w_i``, and the edge gradients ``G y_i``."""
    columns = ctx.columns
    row = ctx.edges[ctx.source_index]
    if columns == list(range(columns[0], columns[-1] + 1)):
        weights = row[columns[0]:columns[-1] + 1]
    else:
        weights = row.index_select(0, index_tensor(columns, row.device))
    if weights.dtype != stacked.dtype:
        weights = weights.to(stacked.dtype)
    grad_source = _unflat(torch.mv(stacked.t(), weights), like)
    if source is not None:
        dots = torch.mv(stacked, _flat(source))
        for k, column in enumerate(columns):
            ctx.dots[ctx.source_index, column] = dots[k]
    return None, None, None, None, None, grad_source


def _pack(tensor: torch.Tensor):
    recipe = getattr(tensor, _RECIPE, None)
    return tensor if recipe is None else recipe


def _unpack(packed):
    if isinstance(packed, torch.Tensor):
        return packed
    if callable(packed):  # a recipe of another sum (a dynamic stage's)
        return packed()
    inputs, values = packed
    return weighted_sum(inputs, values)


@contextmanager
def recompute_sums() -> Iterator[None]:
    """While active, a summed tensor that autograd saves for backward is
    replaced by its recipe and rebuilt when backward needs it."""
    with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
        yield


def run_on_sum(block: torch.nn.Module, summed: torch.Tensor, recipe,
               *args) -> torch.Tensor:
    """``block(summed, *args)``, where the block's layers that save their
    input for backward keep ``recipe`` instead of ``summed`` and rebuild it
    then: ``(inputs, weights)`` of a :func:`weighted_sum`, or a function of
    no arguments that recomputes it."""
    setattr(summed, _RECIPE, recipe)
    try:
        with recompute_sums():
            return block(summed, *args)
    finally:
        delattr(summed, _RECIPE)


def scale_grad(t: torch.Tensor, scale: float) -> torch.Tensor:
    """``t`` itself in the forward pass; ``scale`` times its gradient."""
    fixed = t.detach()
    return fixed + (t - fixed) * scale


_INDEX_CACHE: dict = {}


def index_tensor(positions: Sequence[int],
                 device: torch.device) -> torch.Tensor:
    """``positions`` as an index tensor on ``device``, made once per
    positions and device; made afresh under ``torch.compile`` (a tensor
    made while tracing must not outlive the trace)."""
    if is_compiling():
        return torch.tensor(list(positions), device=device)
    key = (device, tuple(positions))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(list(positions), device=device)
    return _INDEX_CACHE[key]


class GatedSum(torch.autograd.Function):
    """``sum_k coef[:, k] * inputs[k]``, one coefficient per sample and
    input (a dynamic node's sum): a single op that mmengine's FLOP counter
    sees (``prim::PythonOp.GatedSum``), without keeping the sum for
    backward."""

    @staticmethod
    def forward(ctx, coef: torch.Tensor, *inputs: torch.Tensor):
        ctx.save_for_backward(coef, *inputs)
        return gated_values(coef, inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        coef, *inputs = ctx.saved_tensors
        scale = coef.to(grad.dtype)
        grad_coef = None
        if ctx.needs_input_grad[0]:
            grad_coef = torch.stack([(grad * x).sum(
                dim=tuple(range(1, x.dim())), dtype=coef.dtype)
                                     for x in inputs],
                                    dim=1)
        grads = [
            grad *
            _per_sample(scale[:, k], grad) if ctx.needs_input_grad[k +
                                                                   1] else None
            for k in range(len(inputs))
        ]
        return (grad_coef, *grads)


def gated_values(coef: torch.Tensor,
                 inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of :class:`GatedSum`, computed (and recomputed in backward,
    :func:`run_on_sum`) by this one function."""
    scale = coef.to(inputs[0].dtype)
    out = inputs[0] * _per_sample(scale[:, 0], inputs[0])
    for k, x in enumerate(inputs[1:], 1):
        out.addcmul_(_per_sample(scale[:, k], x), x)
    return out


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def gated_sum(coef: torch.Tensor,
              inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """:class:`GatedSum`; for the compiler the same sum as plain autograd
    ops, which it traces and fuses."""
    if is_compiling():
        return gated_values(coef, inputs)
    return GatedSum.apply(coef, *inputs)
