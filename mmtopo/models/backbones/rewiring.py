"""Stage rewiring: the one mechanism that turns a stock backbone's stages
into weighted DAGs of their blocks.

A backbone qualifies when it holds its stages as sequences of blocks, the
first of which may change the shape (stride, channels) and the rest keep it.
The stock mmdet class builds everything first, so the stem, the blocks,
``frozen_stages``, ``norm_eval``, ``with_cp`` and ``init_cfg`` behave as in
the stock backbone and parameter names match its checkpoints. Then every
stage named by :meth:`TopoMixin.stage_layers` is replaced by a
:class:`~mmtopo.models.layers.StageGraph` holding the same blocks: node 0 is
the first block, nodes ``1..n-1`` the others, node ``n`` the stage output.

A family is a thin class that puts :class:`TopoMixin` before the stock class
and, where the stock class does not list its stages in ``res_layers``,
names them (see ``TopoMobileNetV2``).
"""
import math
from typing import Dict, Iterator, List, Sequence, Tuple, Union

import torch
from torch import nn

from ..graph import StageGraphInfo, prune_graph, widest_path
from ..layers import (DynamicStageGraph, StageGraph, edge_values_read,
                      is_compiling)
from ..topology import build_topologies

TopologySpec = Union[dict, Sequence[dict]]


def rewire_stages(backbone: nn.Module,
                  names: Sequence[str],
                  topology: TopologySpec,
                  graph_mismatch: str,
                  edge_grad: str = 'rms',
                  channel_dim: int = 1) -> None:
    """Replace each stage, the module at the (dotted) path ``name`` in
    ``backbone``, by a stage graph of its blocks, with one topology spec for
    all stages or one per stage; ``channel_dim`` is where the blocks'
    outputs hold their channels (1 for maps, -1 for tokens)."""
    layers = [backbone.get_submodule(name) for name in names]
    graphs = build_topologies(topology, len(layers),
                              [len(layer) for layer in layers])
    for name, layer, graph in zip(names, layers, graphs):
        # a stage with a routed node gates its edges per sample
        stage_type = DynamicStageGraph if graph.routed else StageGraph
        # take part in mmengine's init recursion exactly where the stock
        # container did (mmdet's ResLayer does, a plain nn.Sequential not)
        stage = stage_type(
            list(layer),
            graph,
            graph_mismatch=graph_mismatch,
            init_blocks=hasattr(layer, 'init_weights'),
            edge_grad=edge_grad,
            channel_dim=channel_dim)
        parent, _, attribute = name.rpartition('.')
        setattr(backbone.get_submodule(parent), attribute, stage)


def topology_backbones(model: nn.Module) -> List[Tuple[str, 'TopoMixin']]:
    """``(name, module)`` of every topology backbone in ``model`` (a model
    wrapper such as DDP is looked through), in module order."""
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, TopoMixin)]


def topology_backbone(model: nn.Module) -> Tuple[str, 'TopoMixin']:
    """``(name, module)`` of the first topology backbone of ``model``;
    an error when it has none."""
    found = topology_backbones(model)
    if not found:
        raise ValueError('the model has no topology backbone (TopoResNet, '
                         'TopoRegNet, ...): it has no learned topology')
    return found[0]


class TopoMixin:
    """Adds ``topology`` to a stock backbone made of stages of blocks.

    Args:
        topology: one spec for every stage, or a list of one spec per stage,
            e.g. ``dict(type='learnable', init='residual')``. Types:
            ``residual`` (the stock backbone), ``complete``, ``random``,
            ``learnable``, ``dynamic`` (learnable, with a per-sample router
            per node: :mod:`mmtopo.models.layers.dynamic`), ``custom``; see
            :mod:`mmtopo.models.topology`.
            A stage of one block has one possible graph, a single edge: it
            stays fixed whatever the spec (a learnable weight there would
            only scale the stage output).
        graph_mismatch: loading a checkpoint of another graph is an error
            (``'error'``), or, on purpose, adapted to this graph with a
            report of the edges dropped (``'adapt'``; see
            :class:`~mmtopo.models.layers.StageGraph`).
        edge_grad: the edges' gradient, ``'rms'`` (the true gradient
            divided by ``sqrt(C)``, default), ``'sum'`` (the true gradient)
            or ``'mean'`` (divided by ``C``, this project's first rule); see
            :mod:`mmtopo.models.layers`.
        The other arguments, and their defaults, are the stock class's
        (so ``norm_eval`` defaults to True for mmdet's ResNet family and
        RegNet, to False for MobileNetV2, as there): a config that swaps
        ``type='ResNet'`` for ``type='TopoResNet'`` keeps its behaviour.
        Classification recipes train their norm layers and say
        ``norm_eval=False``.
    """

    def __init__(self,
                 *args,
                 topology: TopologySpec = dict(type='residual'),
                 graph_mismatch: str = 'error',
                 edge_grad: str = 'rms',
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.stage_names = self.stage_layers()
        rewire_stages(self, self.stage_names, topology, graph_mismatch,
                      edge_grad, self.channel_dim)
        self._freeze_stages()  # again: the edge weights are new parameters

    # where the blocks' outputs hold their channels: 1 for (N, C, H, W)
    # maps, -1 for (N, L, C) tokens
    channel_dim = 1

    def stage_layers(self) -> List[str]:
        """Paths of the stock backbone's sequences of blocks to rewire, in
        order (dotted where the sequence sits inside a stage)."""
        return list(self.res_layers)

    def init_weights(self) -> None:
        """The stock backbone's init on the stock modules alone, then the
        routers': the backbone's ``init_cfg`` (but a ``Pretrained`` one)
        applied to them from a fork of the random state, and their gates
        set to 1. A backbone whose init draws every Linear layer (Swin,
        ConvNeXt) would otherwise draw the routers' in the middle of its
        own: that shifts the random stream, so the same seed would no
        longer give the stock weights."""
        routed = [stage for stage in self.stage_graphs if stage.dynamic]
        held = [stage._modules.pop('routers') for stage in routed]
        try:
            super().init_weights()
        finally:
            for stage, routers in zip(routed, held):
                stage.routers = routers
        cfgs = self.init_cfg if isinstance(self.init_cfg,
                                           list) else [self.init_cfg]
        cfgs = [c for c in cfgs if c and c.get('type') != 'Pretrained']
        with torch.random.fork_rng(devices=[]):
            for routers in held:
                routers.init_cfg = cfgs or None
                routers.init_weights()

    def forward(self, x):
        if is_compiling():  # the stages trace their weights
            return super().forward(x)
        # one host read, not one a stage
        with edge_values_read(self.stage_graphs, self.stage_names):
            return super().forward(x)

    def train(self, mode: bool = True):
        """The stock ``train`` (which enforces ``frozen_stages`` and
        ``norm_eval``), returning ``self`` as ``nn.Module.train`` does."""
        super().train(mode)
        return self

    @property
    def stage_graphs(self) -> List[StageGraph]:
        """The stage graphs, in the order of :attr:`stage_names`. (Not
        ``stages``: Swin and ConvNeXt hold theirs under that name.)"""
        return [self.get_submodule(name) for name in self.stage_names]

    def named_wiring_parameters(self) -> Iterator[Tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of what the wiring adds to the stock
        backbone and learns: each stage's edge weights (when learnable) and
        its routers' parameters (when dynamic); names relative to the
        backbone, as in its ``state_dict``."""
        for stage_name, stage in zip(self.stage_names, self.stage_graphs):
            if stage.learnable:
                yield f'{stage_name}.edge_weights', stage.edge_weights
            for name, param in stage.routers.named_parameters():
                yield f'{stage_name}.routers.{name}', param

    def topology_graphs(self) -> List[StageGraphInfo]:
        """The graph each stage has now, one :class:`StageGraphInfo` per
        stage: for drawing, logging, costing and pruning."""
        return [
            StageGraphInfo(
                name=name,
                num_nodes=len(stage) + 1,
                learnable=stage.learnable,
                edges=tuple(stage.edges()),
                live=tuple(stage.live_nodes()),
                removed=tuple(stage.removed),
                routed=tuple(stage.routed_nodes))
            for name, stage in zip(self.stage_names, self.stage_graphs)
        ]

    def removed_blocks(self) -> Dict[str, List[int]]:
        """The blocks each stage of a pruned graph does without, by stage
        name (stages that keep every block are left out)."""
        return {
            name: list(stage.removed)
            for name, stage in zip(self.stage_names, self.stage_graphs)
            if stage.removed
        }

    def export_topology(self, threshold: float = 0.0) -> List[dict]:
        """``custom`` specs of the graph pruned at ``threshold``, one per
        stage, for a config's ``topology``: the edges whose weight magnitude
        exceeds it, minus every block that then has no active input or no
        path to the stage output (listed in ``removed``; its edges go too).
        A model built from the specs computes what this one computes with
        those edges set to zero.

        Raises ``ValueError`` naming the stage when the threshold cuts every
        path through it, with the largest threshold that would not, and
        when its edge weights are not finite (a diverged run: no threshold
        says which of its edges matter).
        """
        if threshold < 0:
            raise ValueError(f'threshold must be >= 0, got {threshold!r}')
        specs = []
        for graph in self.topology_graphs():
            n = graph.num_nodes
            bad = [(i, j, w) for i, j, w in graph.edges
                   if not math.isfinite(w)]
            if bad:
                raise ValueError(
                    f'{graph.name}: edge weights (i, j, weight) {bad} are '
                    'not finite (the run diverged); such a graph cannot be '
                    'pruned')
            kept_edges, kept = prune_graph(n, graph.edges, threshold)
            if not kept[-1]:
                raise ValueError(
                    f'{graph.name}: pruning at threshold {threshold!r} '
                    'cuts every path from its input to its output; '
                    f'thresholds below {widest_path(n, graph.edges):.6g} '
                    'keep it connected')
            spec = dict(
                type='custom',
                edges=[(i, j) for i, j, _ in kept_edges],
                weights=[w for _, _, w in kept_edges],
                learnable=graph.learnable)
            removed = [k for k in range(1, n - 1) if not kept[k]]
            if removed:
                spec['removed'] = removed
            if graph.routed:  # the routers of the nodes kept stay
                stage = self.get_submodule(graph.name)
                spec.update(
                    routed=[j for j in graph.routed if kept[j]],
                    router=dict(stage.router_cfg),
                    threshold=stage.threshold)
            specs.append(spec)
        return specs
