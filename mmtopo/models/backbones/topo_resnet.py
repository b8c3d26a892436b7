"""TopoResNet: mmdet's ResNet with every stage rewired as a weighted DAG.

The stock backbone is built first, by mmdet's own code, so the stem, the
blocks, ``frozen_stages``, ``norm_eval``, ``with_cp``, ``dcn``, ``plugins`` and
``init_cfg`` behave exactly as in ``mmdet.models.ResNet`` and parameter names
match stock checkpoints. Then each ``layer{i}`` is replaced by a
:class:`~mmtopo.models.graph.StageGraph` holding the same blocks.
"""
from typing import Dict, List, Sequence, Union

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import ResNet, ResNetV1d
from mmdet.models.backbones.resnext import ResNeXt
from torch import nn

from ...registry import register_model
from ..graph import StageGraph, edge_values_read
from ..topology import build_topologies, prune_graph, widest_path

TopologySpec = Union[dict, Sequence[dict]]


class TopoMixin:
    """Adds ``topology`` to a ResNet-like backbone of mmdet.

    Args:
        topology: one spec for every stage, or a list of one spec per stage,
            e.g. ``dict(type='learnable', init='residual')``. Types:
            ``residual`` (stock ResNet), ``complete``, ``random``,
            ``learnable``, ``custom``; see :mod:`mmtopo.models.topology`.
        graph_mismatch: loading a checkpoint of another graph is an error
            (``'error'``), or, on purpose, adapted to this graph with a
            report of the edges dropped (``'adapt'``; see
            :class:`~mmtopo.models.graph.StageGraph`).
        norm_eval: defaults to False as in mmpretrain (detection configs set
            True explicitly); the other arguments are mmdet's.
    """

    def __init__(self,
                 *args,
                 topology: TopologySpec = dict(type='residual'),
                 graph_mismatch: str = 'error',
                 norm_eval: bool = False,
                 **kwargs):
        super().__init__(*args, norm_eval=norm_eval, **kwargs)
        graphs = build_topologies(topology, self.num_stages,
                                  self.stage_blocks)
        for name, graph in zip(self.res_layers, graphs):
            setattr(self, name, StageGraph(list(getattr(self, name)), graph,
                                           graph_mismatch=graph_mismatch))
        self._freeze_stages()  # again: the edge weights are new parameters

    def forward(self, x):
        if torch.compiler.is_compiling():  # the stages trace their weights
            return super().forward(x)
        with edge_values_read(self.stages):  # one host read, not one a stage
            return super().forward(x)

    def train(self, mode: bool = True):
        super().train(mode)  # mmdet's enforces frozen_stages and norm_eval
        return self

    @property
    def stages(self) -> List[StageGraph]:
        return [getattr(self, name) for name in self.res_layers]

    def topology_graphs(self) -> List[Dict]:
        """The graph each stage has now: for drawing, logging and pruning.

        Returns one dict per stage with ``num_nodes``, ``learnable``,
        ``edges``, a list of ``(i, j, weight)``, ``live``, which nodes
        compute (:meth:`StageGraph.live_nodes`), and ``removed``, the blocks
        a pruned graph does without.
        """
        return [
            dict(
                num_nodes=len(stage) + 1,
                learnable=stage.learnable,
                edges=stage.edges(),
                live=stage.live_nodes(),
                removed=list(stage.removed)) for stage in self.stages
        ]

    def export_topology(self, threshold: float = 0.0) -> List[dict]:
        """``custom`` specs of the graph pruned at ``threshold``, one per
        stage, for a config's ``topology``: the edges whose weight magnitude
        exceeds it, minus every block that then has no active input or no
        path to the stage output (listed in ``removed``; its edges go too).
        A model built from the specs computes what this one computes with
        those edges set to zero.

        Raises ``ValueError`` naming the stage when the threshold cuts every
        path through it, with the largest threshold that would not.
        """
        if threshold < 0:
            raise ValueError(f'threshold must be >= 0, got {threshold!r}')
        specs = []
        for name, graph in zip(self.res_layers, self.topology_graphs()):
            n = graph['num_nodes']
            kept_edges, kept = prune_graph(n, graph['edges'], threshold)
            if not kept[-1]:
                raise ValueError(
                    f'{name}: pruning at threshold {threshold!r} cuts every '
                    f'path from its input to its output; thresholds below '
                    f'{widest_path(n, graph["edges"]):.6g} keep it connected')
            spec = dict(type='custom',
                        edges=[(i, j) for i, j, _ in kept_edges],
                        weights=[w for _, _, w in kept_edges],
                        learnable=graph['learnable'])
            removed = [k for k in range(1, n - 1) if not kept[k]]
            if removed:
                spec['removed'] = removed
            specs.append(spec)
        return specs


@register_model
class TopoResNet(TopoMixin, ResNet):
    """ResNet (depth 18/34/50/101/152) whose stages are weighted DAGs."""


@register_model
class TopoResNetV1d(TopoMixin, ResNetV1d):
    """ResNetV1d (deep stem, avg-down shortcut) whose stages are DAGs."""


@register_model
class TopoResNeXt(TopoMixin, ResNeXt):
    """ResNeXt (``groups``, ``base_width``) whose stages are DAGs."""


@register_model
class TopoResNetCIFAR(TopoResNet):
    """TopoResNet for 32x32 inputs: a 3x3 stride-1 stem and no max-pool, as
    mmpretrain's ``ResNet_CIFAR``."""

    def __init__(self, *args, deep_stem: bool = False, **kwargs):
        if deep_stem:
            raise ValueError('TopoResNetCIFAR has a plain 3x3 stem: '
                             f'deep_stem must be False, got {deep_stem!r}')
        super().__init__(*args, deep_stem=False, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels,
                                      stem_channels, kernel_size=3, stride=1,
                                      padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg,
                                                  stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
