"""The stage graph: blocks as DAG nodes, edges as weighted sums
(:mod:`.edge_functions`).

The shortcuts need the weights on the host. A backbone reads all its stages'
weights in one copy per forward (:func:`edge_values_read`: one GPU sync),
and the stages take their weight tensors only as views, so nothing else in a
forward waits for the device. Under ``torch.compile`` a stage instead keeps
its weights on the device (:meth:`StageGraph.forward_traceable`): the graph
has no break, does not change when a weight does, and the compiler fuses the
sums.
"""
import logging
import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModule, ModuleDict
from torch import nn

from ..graph import live_nodes, reaching_nodes
from ..topology import StageTopology, is_cut, zero_edges
from .compiling import is_compiling
from .edge_functions import (EDGE_GRADS, EdgeGradients, EdgeSink, FanOut,
                             WeightedSum, edge_grad_scale, run_on_sum,
                             scale_grad, weighted_sum)


def check_finite_edges(values: List[list], name: str) -> None:
    """Refuse edge weights (as read to the host) that are NaN or infinite,
    naming the stage, the edges and, in a training run, the iteration:
    the divergence shows where it starts, not in a loss hooks later."""
    if all(math.isfinite(w) for row in values for w in row):
        return
    bad = [(i, j, w) for i, row in enumerate(values) for j, w in enumerate(row)
           if not math.isfinite(w)]
    hub = MessageHub.get_current_instance()
    step = hub.get_info('iter')
    when = '' if step is None else f' at iteration {step}'
    raise FloatingPointError(
        f'{name}: edge weights (i, j, weight) {bad} are not finite{when}: '
        'the training diverged (lower the learning rate of the edges, or '
        'clip the gradients)')


@contextmanager
def edge_values_read(stages: Sequence['StageGraph'],
                     names: Optional[Sequence[str]] = None) -> Iterator[None]:
    """While active, the stages' forward passes use their edge weights as
    read on entry, all learnable stages in one device-to-host copy: one
    sync per backbone forward on a GPU instead of one per stage. The
    weights change only between forward passes (optimizer and proximal
    steps). Fixed weights are read once and kept until they change (a
    checkpoint load), so the residual wiring adds no op at all. The
    trained stages share one :class:`EdgeGradients`, so that the
    backbone's edge gradients are assembled in one stack.

    Weights that are not finite are refused where they are read
    (:func:`check_finite_edges`, named by ``names``), at no extra sync.
    """
    names = names or [f'stage {k}' for k in range(len(stages))]
    learned = [(name, stage) for name, stage in zip(names, stages)
               if stage.learnable]
    for stage in stages:
        if not stage.learnable:
            stage._preread = stage._fixed_values()
    if learned:
        weights = [stage.edge_weights.detach() for _, stage in learned]
        flat = (weights[0].reshape(-1) if len(weights) == 1 else torch.cat(
            [w.reshape(-1) for w in weights])).tolist()
        start = 0
        for (name, stage), w in zip(learned, weights):
            n = w.shape[0]
            stage._preread = [
                flat[start + r * n:start + (r + 1) * n] for r in range(n)
            ]
            check_finite_edges(stage._preread, name)
            start += n * n
    # a dynamic stage's sums are plain autograd (DynamicStageGraph)
    trained = [
        stage for _, stage in learned if torch.is_grad_enabled()
        and stage.edge_weights.requires_grad and not stage.dynamic
    ]
    if trained:
        sinks = [EdgeSink() for _ in trained]
        views = EdgeGradients.apply(sinks,
                                    *(stage.edge_weights for stage in trained))
        for stage, view, sink in zip(trained, views, sinks):
            stage._shared_grads = (view, sink)
    try:
        yield
    finally:
        for stage in stages:
            stage._preread = None
            stage._shared_grads = None


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
            :mod:`.edge_functions`.
        channel_dim: where the blocks' outputs hold their channels: 1 for
            ``(N, C, H, W)`` maps, -1 for ``(N, L, C)`` tokens (Swin).
        init_cfg: mmengine initialisation of the stage itself (only with
            ``init_blocks``: otherwise ``init_weights`` does nothing).
    """

    def __init__(self,
                 blocks: Sequence[nn.Module],
                 topology: StageTopology,
                 graph_mismatch: str = 'error',
                 init_blocks: bool = True,
                 edge_grad: str = 'rms',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 channel_dim: int = 1):
        super().__init__(init_cfg=init_cfg)
        self.channel_dim = channel_dim
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
        if topology.routed and not self.dynamic:
            raise ValueError(
                f'the topology routes nodes {list(topology.routed)}: a '
                'stage with routers is a DynamicStageGraph')
        self.removed = tuple(topology.removed)
        self.allow_cut = topology.allow_cut
        self._cut_reported = False
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
        # set by edge_values_read for one forward: the weights as read, and
        # this stage's part of the backbone's EdgeGradients (view, sink)
        self._preread: Optional[List[list]] = None
        self._shared_grads: Optional[tuple] = None
        self._fixed_read: Optional[tuple] = None  # (tensor, version, values)
        self._consumers: List[List[int]] = [
            self.edge_mask[i].nonzero().flatten().tolist()
            for i in range(num_nodes)
        ]
        # a static stage has no routers (DynamicStageGraph fills them); the
        # empty dict lets code that walks the routers treat both alike
        self.routers = ModuleDict()

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

    @property
    def dynamic(self) -> bool:
        """Whether the stage gates its edges per sample (routers)."""
        return False

    def sources_of(self, j: int) -> List[int]:
        """The nodes with an edge into node ``j``, in order."""
        return list(self._sources[j])

    @property
    def routed_nodes(self) -> List[int]:
        """The nodes with a router (none in a static stage)."""
        return [int(j) for j in self.routers]

    def edges(self, weights: Optional[torch.Tensor] = None) -> List[tuple]:
        """``(i, j, weight)`` for every edge in the mask, the weights read
        from ``weights`` (an ``(n+1, n+1)`` tensor or nested list; default:
        the stage's own)."""
        if weights is None:
            weights = self.edge_weights.detach()
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        return [(i, j, weights[i][j]) for j, srcs in enumerate(self._sources)
                for i in srcs]

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

    # -- what the eager and the traced forward share ----------------------
    def host_weights(self) -> List[list]:
        """The edge weights on the host: as the backbone read them for this
        forward (:func:`edge_values_read`), else read now (and refused if
        not finite)."""
        if self._preread:
            return self._preread
        values = self.edge_weights.detach().tolist()
        check_finite_edges(values, 'the stage')
        return values

    def is_learning(self) -> bool:
        """Whether this forward trains the edges. Then zero edges and blocks
        that reach nothing still run: a zero edge gets the gradient that
        lets it grow back. Otherwise they are skipped, the pruned
        network's cost."""
        return (torch.is_grad_enabled() and self.training
                and self.edge_weights.requires_grad)

    def nodes_to_run(self, values: List[list], learning: bool) -> List[bool]:
        """Which nodes compute in this forward: the live ones
        (:meth:`live_nodes`), and outside training only those that also
        reach the output. The output node runs when the stage connects."""
        edges = self.edges(values)
        run = live_nodes(len(self) + 1, edges)
        if not learning:
            run = [
                a and b
                for a, b in zip(run, reaching_nodes(len(self) + 1, edges))
            ]
        return run

    def traced_weights(self, first: torch.Tensor) -> torch.Tensor:
        """The edge weights as a device tensor whose gradient is scaled by
        :func:`edge_grad_scale` (as :class:`FanOut` scales it) and, outside
        training, does not reach a zero edge (which is not there)."""
        weights = self.edge_weights
        if self.learnable:
            scale = edge_grad_scale(first, self.edge_grad, self.channel_dim)
            if scale != 1.0:
                weights = scale_grad(weights, scale)
            if torch.is_grad_enabled() and not self.training:
                weights = torch.where(weights != 0, weights, weights.detach())
        return weights

    def report_cut(self) -> None:
        """Say once that the stage's output is constant zero (every path
        through it cut), unless its topology allowed that on purpose."""
        if self.allow_cut or self._cut_reported:
            return
        self._cut_reported = True
        print_log(
            'a stage graph computes a constant zero output: every path from '
            f'its input to its output has a zero edge (edges (i, j, weight) '
            f'{self.edges()}); it gets no gradient and cannot recover',
            logger='current',
            level=logging.WARNING)

    @staticmethod
    def active_on_device(weights: torch.Tensor, sources: List[int], j: int,
                         alive: Dict[int, torch.Tensor]) -> torch.Tensor:
        """Whether node ``j`` has an active input, as a device bool: some
        in-edge with a non-zero weight from a live source."""
        return torch.stack([(weights[i, j] != 0) & alive[i]
                            for i in sources]).any()

    # -- the eager forward ---------------------------------------------------
    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        """The stage output. The edge weights are read to the host here,
        unless the backbone read them for all its stages already
        (:func:`edge_values_read`). ``args`` go to every block after its
        input (Swin's blocks take the token grid's shape)."""
        if is_compiling():
            return self.forward_traceable(x, *args)
        values = self.host_weights()
        track = torch.is_grad_enabled()
        learning = self.is_learning()
        run = self.nodes_to_run(values, learning)
        last = len(self)
        # feeds[j]: (weight, tensor) of every in-edge of j from a node run
        feeds: List[List[tuple]] = [[] for _ in range(last + 1)]
        first = self[0](x, *args)
        edges, dots = self.edge_weights, {}
        if track and edges.requires_grad:
            if self._shared_grads is None:  # called alone: its own
                sink = EdgeSink()
                edges, = EdgeGradients.apply([sink], edges)
            else:  # one for the backbone's stages (edge_values_read)
                edges, sink = self._shared_grads
            sink.scale = edge_grad_scale(first, self.edge_grad,
                                         self.channel_dim)
            dots = sink.dots
        self._fan_out(0, first, values, track, learning, edges, dots, feeds)
        for j in range(1, last + 1):
            if not run[j]:
                if j == last:  # every path is cut: constant zero
                    self.report_cut()
                    return torch.zeros_like(first)
                continue  # a removed node
            weights = [w for w, _ in feeds[j]]
            inputs = [t for _, t in feeds[j]]
            identity = self._is_fixed_identity(weights)
            if identity:
                node_in = inputs[0]  # exactly ResNet's residual stream
            elif track or torch.jit.is_tracing():
                # (a trace, the FLOP counter's, sees the sum as one op)
                node_in = WeightedSum.apply(weights, *inputs)
            else:  # the same sum, without an autograd node's overhead
                node_in = weighted_sum(inputs, weights)
            if j == last:
                return node_in
            if track and not identity:
                # the block's first layers save their input for backward:
                # keep the recipe instead and rebuild the sum then
                output = run_on_sum(self[j], node_in, (inputs, weights), *args)
            else:
                output = self[j](node_in, *args)
            self._fan_out(j, output, values, track, learning, edges, dots,
                          feeds)

    # -- the traced forward --------------------------------------------------
    def forward_traceable(self, x: torch.Tensor, *args) -> torch.Tensor:
        """The same function with the weights kept on the device: what
        ``torch.compile`` traces (no host read, so no graph break, and the
        graph does not change when a weight does).

        Every edge is computed, and the compiler fuses each node's sum into
        one pass. A node without an active input is switched off by
        multiplying its output by 0 (:meth:`forward` does not run it), and
        so is the output of a stage cut apart: outputs and gradients are
        the same, but its block still runs, and in training its norm
        layers' running statistics see the zero input.
        """
        # blocks by attribute (torch 2.1's dynamo fails on __getitem__)
        first = getattr(self, '0')(x, *args)
        weights = self.traced_weights(first)
        outputs = {0: first}
        alive = {0: torch.ones((), dtype=torch.bool, device=x.device)}
        last = len(self)
        for j in range(1, last + 1):
            sources = [i for i in self._sources[j] if i in outputs]
            if not sources:  # a removed block
                continue
            node_in = None
            for i in sources:
                term = weights[i, j] * outputs[i]
                node_in = term if node_in is None else node_in + term
            active = self.active_on_device(weights, sources, j, alive)
            if j == last:  # cut apart: constant zero, as in forward
                return node_in * active
            alive[j] = active
            outputs[j] = getattr(self, str(j))(node_in, *args) * active
        raise AssertionError('a checked topology always reaches its output')

    def _is_fixed_identity(self, weights: List[float]) -> bool:
        return not self.learnable and weights == [1.0]

    def _fan_out(self, i: int, output: torch.Tensor, values: List[list],
                 track: bool, learning: bool, edges: torch.Tensor, dots: dict,
                 feeds: List[List[tuple]]) -> None:
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

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
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
                # the routers load after this call, from this dict: their
                # keys are rewritten in place
                self.adapt_routers(state_dict, prefix, theirs)
                state_dict = dict(state_dict)
                self._adapt_graph(state_dict, prefix)
        self._check_loaded_weights(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _check_loaded_weights(self, state_dict: dict, prefix: str) -> None:
        """Refuse a checkpoint's edge weights that are not finite, or that
        cut every path through the stage (unless it allows that)."""
        weights = state_dict.get(prefix + 'edge_weights')
        if not isinstance(weights, torch.Tensor) or \
                weights.shape != self.edge_mask.shape:
            return  # torch's own check names a wrong shape
        mask = self.edge_mask.cpu()
        values = weights.detach().cpu().float()
        bad = [(i, j, float(values[i, j]))
               for i, j in (mask & ~torch.isfinite(values)).nonzero().tolist()]
        if bad:
            raise ValueError(
                f'checkpoint edge weights at {prefix}edge_weights are not '
                f'finite: (i, j, weight) {bad} (the run that saved it '
                'diverged)')
        if not self.allow_cut and is_cut(mask, values):
            zeros = zero_edges(mask, values)
            raise ValueError(
                f'checkpoint edge weights at {prefix}edge_weights cut every '
                f'path through the stage (zero edges {zeros}): it would '
                'output zeros; set allow_cut=True in its topology to load '
                'it so on purpose')

    def adapt_routers(self, state_dict: dict, prefix: str,
                      their_mask: torch.Tensor) -> None:
        """Rewrite, in ``state_dict``, the routers at ``prefix`` of a graph
        with edges ``their_mask`` into this graph's (a static stage has
        none: nothing to do)."""

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
        blocks = [
            k for k in self.removed if any(
                key.startswith(f'{prefix}{k}.') for key in state_dict)
        ]
        print_log(
            f"graph_mismatch='adapt' at {prefix.rstrip('.')}: "
            f'dropped edges (i, j, weight) {dropped}, '
            f'edges not in the checkpoint (kept as built) {missing}, '
            f'removed blocks whose checkpoint weights are unused {blocks}',
            logger='current',
            level=logging.WARNING)


GRAPH_MISMATCH = ('error', 'adapt')


def _describe(mask: torch.Tensor) -> str:
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return f'a mask of shape {tuple(mask.shape)}'
    edges = [tuple(e) for e in mask.bool().nonzero().tolist()]
    return f'{mask.shape[0]} nodes with edges {edges}'
