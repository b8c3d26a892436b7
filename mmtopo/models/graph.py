"""The stage graph: blocks as DAG nodes, edges as weighted sums.

Cost model. A weighted sum of node outputs is pure memory traffic, and in a
ResNet the blocks' own element-wise work is of the same order, so a naive
``x = x + w * y`` loop costs 15-25% of the whole network. The aggregation
here therefore

* passes a node output straight through when it is the only input and its
  weight is 1 (the residual wiring is then literally ResNet);
* accumulates in place and skips zero weights and unit multiplies
  (:class:`WeightedSum`);
* meets all gradients of a node output in one place (:class:`FanOut`),
  which sums them with the edge weights in one fused accumulation and
  computes the edge gradients as dot products, without materialising a
  ``w * grad`` product per edge; a stage's edge gradients are assembled
  once, in one stack (:class:`EdgeGradients`), not row by row;
* does not keep the summed input of a block for backward: the block's convs
  would store it, so it is recomputed from the node outputs, which the blocks
  store anyway (:func:`recompute_sums`).

The shortcuts need the weights on the host. A backbone reads all its stages'
weights in one copy per forward (:func:`edge_values_read`: one GPU sync),
and the stages take their weight tensors only as views, so nothing else in a
forward waits for the device. Under ``torch.compile`` a stage instead keeps
its weights on the device (:meth:`StageGraph.forward_traceable`): the graph
has no break, does not change when a weight does, and the compiler fuses the
sums.

Edge gradients are the true gradients divided by ``sqrt(C)`` by default
(``edge_grad='rms'``). An edge weight scales a whole feature map of ``C``
channels, and its gradient ``<dL/dx_j, y_i>`` is the sum over the channels
of what ``C`` per-channel scales (a norm layer's gammas) would each get.
Measured in training, the signal in those ``C`` terms largely cancels (the
sum is 0.1-0.4 times their root-sum-square in a TopoResNetCIFAR-34), while
their noise adds up: the true gradient carries about ``sqrt(C)`` times the
noise of one per-channel scale's. Dividing by ``sqrt(C)`` gives an edge the
step noise of one gamma at the same learning rate. Measured under
mmpretrain's CIFAR recipe (SGD lr 0.1, batch 16) on the digits, the true
gradient (``'sum'``) let edges wander to +-2.5 and cost 2.4 points of
top-1; the channel mean (``'mean'``, ``1 / C``, this project's first rule)
kept the accuracy but left the edges ``sqrt(C)`` = 4-45 times slower
than ``'rms'`` at ``C`` = 16-2048: a trained graph was its init minus the
sparsity step's shrinkage, and a block made to add noise kept 0.6 of its
out-edges' weight; ``'rms'`` matched the stock accuracy on held-out images
and cut that block's out-edges to 0.08-0.20 in 300 iterations. As a fixed
diagonal preconditioner the rule changes the step under SGD only
(Adam-style optimizers normalise it away). The sparsity hook's threshold
``lr * lambda`` is on the scale of the step as taken: an edge is pruned
when its gradient as scaled here stays below ``lambda``.
"""
import logging
import math
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn

from .topology import StageTopology, live_nodes, reaching_nodes

# Attribute put on a summed tensor: the inputs and weights it was made from,
# so that backward can rebuild it instead of keeping it.
_RECIPE = '_mmtopo_sum_recipe'


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call. ``torch.compiler``
    has ``is_compiling`` from torch 2.3; torch 2.1 and 2.2 have it only
    as ``torch._dynamo.is_compiling``."""
    check = getattr(getattr(torch, 'compiler', None), 'is_compiling', None)
    if check is None:
        from torch._dynamo import is_compiling as check
    return check()


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


def edge_grad_scale(feature: torch.Tensor, edge_grad: str = 'rms') -> float:
    """What the true gradient of an edge carrying ``feature`` (``N, C, ...``)
    is multiplied by before it reaches ``edge_weights.grad``: 1 for
    ``'sum'`` (the true gradient), ``1 / sqrt(C)`` for ``'rms'``, ``1 / C``
    for ``'mean'`` (the channel mean)."""
    channels = feature.shape[1]
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


def _scale_grad(t: torch.Tensor, scale: float) -> torch.Tensor:
    """``t`` itself in the forward pass; ``scale`` times its gradient."""
    fixed = t.detach()
    return fixed + (t - fixed) * scale


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


class EdgeGradients(torch.autograd.Function):
    """A stage's edge weights as its :class:`FanOut` s take them.

    Each fan-out leaves the dot products of its edges in ``dots`` rather
    than returning a gradient of its own (a row of zeros per node, a
    ``select`` backward and an accumulation each); the backward here runs
    after all of them and assembles the stage's whole gradient in one
    stack, times ``grad_scale`` (:func:`edge_grad_scale`).
    """

    @staticmethod
    def forward(ctx, weights: torch.Tensor, dots: dict, grad_scale: float):
        ctx.dots, ctx.grad_scale = dots, grad_scale
        ctx.shape, ctx.weight_dtype = weights.shape, weights.dtype
        ctx.set_materialize_grads(False)
        return weights.view_as(weights)

    @staticmethod
    def backward(ctx, _):
        dots, (rows, cols) = ctx.dots, ctx.shape
        if not dots:
            return None, None, None
        zero = next(iter(dots.values())).new_zeros(())
        entries = [zero] * (rows * cols)
        for (i, j), value in dots.items():
            entries[i * cols + j] = value
        dots.clear()  # a second backward (retain_graph) fills it again
        grad = torch.stack(entries).view(rows, cols)
        if ctx.grad_scale != 1.0:
            grad.mul_(ctx.grad_scale)
        return grad.to(ctx.weight_dtype), None, None


class FanOut(torch.autograd.Function):
    """One view of a node output ``y_i`` per edge ``i -> j`` leaving it.

    Backward receives ``g_j = dL/dx_j`` from every consumer at once, so it
    can form ``dL/dy_i = sum_j w_ij g_j`` with one fused accumulation instead
    of a scaled copy per edge plus autograd's own sums, and the edge
    gradients ``dL/dw_ij = <g_j, y_i>`` as dot products, left in ``dots``
    for :class:`EdgeGradients`.
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
        ctx.set_materialize_grads(False)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(source)
        return tuple(source.view_as(source) for _ in values)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        grad_source = None
        if ctx.needs_input_grad[0]:
            source, = ctx.saved_tensors
            for column, g in zip(ctx.columns, grads):
                if g is not None:
                    ctx.dots[ctx.source_index, column] = _dot(g, source)
        if ctx.needs_input_grad[5]:
            terms = [(g, w) for g, w in zip(grads, ctx.values)
                     if g is not None and w != 0.0]
            if terms:
                grad_source = weighted_sum(*zip(*terms))
        return None, None, None, None, None, grad_source


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


@contextmanager
def edge_values_read(stages: Sequence['StageGraph']) -> Iterator[None]:
    """While active, the stages' forward passes use their edge weights as
    read on entry, all learnable stages in one device-to-host copy: one
    sync per backbone forward on a GPU instead of one per stage. The
    weights change only between forward passes (optimizer and proximal
    steps). Fixed weights are read once and kept until they change (a
    checkpoint load), so the residual wiring adds no op at all."""
    learned = [stage for stage in stages if stage.learnable]
    for stage in stages:
        if not stage.learnable:
            stage._preread = stage._fixed_values()
    if learned:
        weights = [stage.edge_weights.detach() for stage in learned]
        flat = (weights[0].reshape(-1) if len(weights) == 1 else torch.cat(
            [w.reshape(-1) for w in weights])).tolist()
        start = 0
        for stage, w in zip(learned, weights):
            n = w.shape[0]
            stage._preread = [flat[start + r * n:start + (r + 1) * n]
                              for r in range(n)]
            start += n * n
    try:
        yield
    finally:
        for stage in stages:
            stage._preread = None


class StageGraph(BaseModule):
    """A backbone stage whose blocks are the nodes of a DAG.

    Node 0 is the first block (stride and channel change); node ``j`` in
    ``1..n-1`` runs block ``j`` on the weighted sum of its inputs; node ``n``
    is the weighted sum returned as the stage output.

    The blocks are registered as ``'0'``, ``'1'``, ... so parameter names
    match the ``nn.Sequential`` it replaces (mmdet's ``ResLayer``) and stock
    checkpoints load unchanged. Like ``ResLayer`` it is a ``BaseModule``, so
    mmengine's ``init_weights`` reaches the blocks' own ``init_cfg``
    (``zero_init_residual``), unless ``init_blocks`` is False.

    Args:
        blocks: the stage's blocks, in order.
        topology: the edge mask, initial weights and whether they learn.
        graph_mismatch: what loading a checkpoint of another graph does:
            ``'error'`` (an accident: fail naming the stage) or ``'adapt'``
            (on purpose, e.g. fine-tuning a pruned graph from the learnable
            checkpoint: keep this graph, take the checkpoint's weights of
            the edges both have, and log every edge dropped or missing).
        init_blocks: whether ``init_weights`` runs the blocks' own
            ``init_weights``, as it does through mmdet's ``ResLayer``. False
            where the stage replaces a plain ``nn.Sequential``, which
            mmengine's recursion does not enter (MobileNetV2's stages): there
            the blocks keep what the backbone's ``init_cfg`` gave them, and
            the same seed still gives the stock backbone's weights.
        edge_grad: how the edge gradients are reduced over the ``C``
            channels of the maps the edges carry (:data:`EDGE_GRADS`):
            ``'rms'``, the true gradient divided by ``sqrt(C)`` (default);
            ``'sum'``, the true gradient; ``'mean'``, divided by ``C``. See
            the module notes.
        init_cfg: mmengine initialisation of the stage itself (only with
            ``init_blocks``: otherwise ``init_weights`` does nothing).
    """

    def __init__(self,
                 blocks: Sequence[nn.Module],
                 topology: StageTopology,
                 graph_mismatch: str = 'error',
                 init_blocks: bool = True,
                 edge_grad: str = 'rms',
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if init_cfg and not init_blocks:
            raise ValueError('init_cfg would be ignored: with '
                             'init_blocks=False, init_weights does nothing')
        self.init_blocks = init_blocks
        if graph_mismatch not in GRAPH_MISMATCH:
            raise ValueError(f'graph_mismatch must be one of '
                             f'{GRAPH_MISMATCH}, got {graph_mismatch!r}')
        self.graph_mismatch = graph_mismatch
        if edge_grad not in EDGE_GRADS:
            raise ValueError(f'edge_grad must be one of {EDGE_GRADS}, got '
                             f'{edge_grad!r}')
        self.edge_grad = edge_grad
        num_nodes = len(blocks) + 1
        if topology.mask.shape != (num_nodes, num_nodes):
            raise ValueError(
                f'topology mask of shape {tuple(topology.mask.shape)} does '
                f'not fit a stage of {len(blocks)} blocks')
        self.removed = tuple(topology.removed)
        for i, block in enumerate(blocks):
            if i not in self.removed:  # a pruned graph stores no dead block
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
        self._preread: Optional[List[list]] = None  # see edge_values_read
        self._fixed_read: Optional[tuple] = None  # (tensor, version, values)
        self._consumers: List[List[int]] = [
            self.edge_mask[i].nonzero().flatten().tolist()
            for i in range(num_nodes)
        ]

    def _fixed_values(self) -> List[list]:
        """The fixed edge weights on the host, read again only when the
        buffer has changed (a new tensor, or written in place)."""
        w = self.edge_weights
        cached = self._fixed_read
        if cached is None or cached[0] is not w or cached[1] != w._version:
            self._fixed_read = cached = (w, w._version, w.detach().tolist())
        return cached[2]

    def init_weights(self) -> None:
        if self.init_blocks:
            super().init_weights()
        else:  # what the replaced nn.Sequential did: nothing
            self._is_init = True

    # -- behave like the nn.Sequential ResLayer it replaces ----------------
    def __len__(self) -> int:
        return self.edge_mask.shape[0] - 1

    def __getitem__(self, idx: int) -> nn.Module:
        node = range(len(self))[idx]
        if node in self.removed:
            raise IndexError(f'block {node} is removed from this stage')
        return self._modules[str(node)]

    def __iter__(self) -> Iterator[nn.Module]:
        """The blocks the stage has (removed ones are not there)."""
        return (self[i] for i in range(len(self)) if i not in self.removed)

    @property
    def learnable(self) -> bool:
        return isinstance(self.edge_weights, nn.Parameter)

    def edges(self, weights: Optional[torch.Tensor] = None) -> List[tuple]:
        """``(i, j, weight)`` for every edge in the mask, the weights read
        from ``weights`` (an ``(n+1, n+1)`` tensor or nested list; default:
        the stage's own)."""
        if weights is None:
            weights = self.edge_weights.detach()
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        return [(i, j, weights[i][j]) for j, srcs in
                enumerate(self._sources) for i in srcs]

    def live_nodes(self) -> List[bool]:
        """Which nodes compute: node 0 always; node ``j`` when at least one
        in-edge is active, i.e. has a non-zero weight and a live source.

        A node with no active input is removed, in training as in a pruned
        deployment: its block is not run and it feeds nothing. (Run on a
        constant input, its BatchNorm would see zero variance and scale its
        gradients by ``1/sqrt(eps)``, which throws the edges around.)
        """
        return live_nodes(len(self) + 1, self.edges())

    def connects_input_to_output(self) -> bool:
        """Whether some path of non-zero edges leads from the first block to
        the stage output; if none does, the output is constant zero."""
        return self.live_nodes()[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stage output. The edge weights are read to the host here,
        unless the backbone read them for all its stages already
        (:func:`edge_values_read`)."""
        if is_compiling():
            return self.forward_traceable(x)
        values = self._preread or self.edge_weights.detach().tolist()
        track = torch.is_grad_enabled()
        # Outside training (eval mode or no gradients) zero edges and blocks
        # whose output reaches nothing are skipped: the pruned network's
        # cost. Training keeps both while the edges learn: a zero edge
        # gets the gradient that lets it grow back.
        learning = track and self.training and self.edge_weights.requires_grad
        useful = [True] * (len(self) + 1) if learning else reaching_nodes(
            len(self) + 1, self.edges(values))
        # feeds[j]: (weight, tensor) of every in-edge of j from a live node
        feeds: List[List[tuple]] = [[] for _ in range(len(self) + 1)]
        first = self[0](x)
        edges, dots = self.edge_weights, {}
        if track and edges.requires_grad:
            edges = EdgeGradients.apply(
                edges, dots, edge_grad_scale(first, self.edge_grad))
        self._fan_out(0, first, values, track, learning, edges, dots, feeds)
        for j in range(1, len(self) + 1):
            if not useful[j] or not any(w != 0.0 for w, _ in feeds[j]):
                if j == len(self):  # every path is cut: constant zero
                    return torch.zeros_like(first)
                continue  # a removed node
            weights = [w for w, _ in feeds[j]]
            inputs = [t for _, t in feeds[j]]
            identity = self._is_fixed_identity(weights)
            if identity:
                node_in = inputs[0]  # exactly ResNet's residual stream
            else:
                node_in = WeightedSum.apply(weights, *inputs)
            if j == len(self):
                return node_in
            if track and not identity:
                # the block's first layers save their input for backward:
                # keep the recipe instead and rebuild the sum then
                setattr(node_in, _RECIPE, (inputs, weights))
                with recompute_sums():
                    output = self[j](node_in)
                delattr(node_in, _RECIPE)
            else:
                output = self[j](node_in)
            self._fan_out(j, output, values, track, learning, edges, dots,
                          feeds)

    def forward_traceable(self, x: torch.Tensor) -> torch.Tensor:
        """The same function with the weights kept on the device: what
        ``torch.compile`` traces (no host read, so no graph break, and the
        graph does not change when a weight does).

        Every edge is computed, and the compiler fuses each node's sum into
        one pass. A node without an active input is switched off by
        multiplying its output by 0 (``forward`` does not run it), and so is
        the output of a stage cut apart: outputs and gradients are the same
        (the property tests check both paths), but its block still runs, and
        in training its norm layers' running statistics see the zero input.
        Edges get their gradient times :func:`edge_grad_scale`, as from
        :class:`FanOut`.
        """
        weights = self.edge_weights
        outputs = {0: self[0](x)}
        alive = {0: torch.ones((), dtype=torch.bool, device=x.device)}
        if self.learnable:
            scale = edge_grad_scale(outputs[0], self.edge_grad)
            if scale != 1.0:
                weights = _scale_grad(weights, scale)
            if torch.is_grad_enabled() and not self.training:
                # as in forward: outside training a zero edge is not there
                weights = torch.where(weights != 0, weights,
                                      weights.detach())
        last = len(self)
        for j in range(1, last + 1):
            sources = [i for i in self._sources[j] if i in outputs]
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
            outputs[j] = self[j](node_in) * active
        raise AssertionError('a checked topology always reaches its output')

    def _is_fixed_identity(self, weights: List[float]) -> bool:
        return not self.learnable and weights == [1.0]

    def _fan_out(self, i: int, output: torch.Tensor, values: List[list],
                 track: bool, learning: bool, edges: torch.Tensor,
                 dots: dict, feeds: List[List[tuple]]) -> None:
        """Hand node ``i``'s output to the nodes it feeds; when training,
        through a :class:`FanOut` so that its gradients meet in one place."""
        consumers = self._consumers[i]
        if not learning:  # a zero edge adds nothing
            consumers = [j for j in consumers if values[i][j] != 0.0]
        weights = [values[i][j] for j in consumers]
        if track and consumers and not self._is_fixed_identity(weights):
            parts = FanOut.apply(edges, i, consumers, weights, dots, output)
        else:
            parts = [output] * len(consumers)
        for j, w, part in zip(consumers, weights, parts):
            feeds[j].append((w, part))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + 'edge_mask'
        if key in state_dict:
            theirs = state_dict[key]
            if theirs.shape != self.edge_mask.shape or not torch.equal(
                    theirs.bool().cpu(), self.edge_mask.cpu()):
                if self.graph_mismatch == 'error':
                    raise ValueError(
                        f'checkpoint graph does not fit the model at {key!r}: '
                        f'checkpoint has {_describe(theirs)}, model has '
                        f'{_describe(self.edge_mask)} (to load it into this '
                        "graph on purpose, set graph_mismatch='adapt')")
                state_dict = dict(state_dict)
                self._adapt_graph(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _adapt_graph(self, state_dict: dict, prefix: str) -> None:
        """Rewrite the checkpoint's graph at ``prefix`` into this one: the
        edges both have keep the checkpoint's weights, the others are
        reported (``graph_mismatch='adapt'``)."""
        n = self.edge_mask.shape[0]
        mask = state_dict[prefix + 'edge_mask'].bool().cpu()
        weights = state_dict.get(prefix + 'edge_weights')
        if mask.shape != (n, n) or weights is None:
            raise ValueError(
                f'checkpoint graph at {prefix}edge_mask has '
                f'{_describe(mask)}: a stage of another length cannot be '
                f'adapted to this one of {len(self)} blocks')
        weights = weights.cpu().float()
        ours = self.edge_mask.cpu()
        dropped = [(i, j, round(float(weights[i, j]), 6))
                   for i, j in (mask & ~ours).nonzero().tolist()]
        missing = [tuple(e) for e in (ours & ~mask).nonzero().tolist()]
        adapted = torch.where(ours & mask, weights,
                              self.edge_weights.detach().cpu().float())
        state_dict[prefix + 'edge_mask'] = self.edge_mask.clone()
        state_dict[prefix + 'edge_weights'] = adapted.to(
            self.edge_weights.dtype)
        blocks = [k for k in self.removed if any(
            key.startswith(f'{prefix}{k}.') for key in state_dict)]
        print_log(
            f"graph_mismatch='adapt' at {prefix.rstrip('.')}: "
            f'dropped edges (i, j, weight) {dropped}, '
            f'edges not in the checkpoint (kept as built) {missing}, '
            f'removed blocks whose checkpoint weights are unused {blocks}',
            logger='current', level=logging.WARNING)


GRAPH_MISMATCH = ('error', 'adapt')


def _describe(mask: torch.Tensor) -> str:
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return f'a mask of shape {tuple(mask.shape)}'
    edges = [tuple(e) for e in mask.bool().nonzero().tolist()]
    return f'{mask.shape[0]} nodes with edges {edges}'
