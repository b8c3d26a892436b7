"""FLOPs with the edges counted, and what pruning saves (FLOPs and
parameters).

mmengine's ``FlopAnalyzer`` sees the aggregation as an opaque custom autograd
function and counts nothing for it; this registers its multiply-adds. The
forward pass of a model in eval mode skips zero edges and removed blocks, so
the count is what the network computes as its weights stand.
"""
import copy
import math
from typing import Dict, List, Sequence

import torch
from mmengine.analysis import (FlopAnalyzer, complexity_analysis,
                               parameter_count)
from mmengine.analysis.jit_handles import get_shape

from ..models.graph import StageGraphInfo, prune_graph

AGGREGATION_OP = 'prim::PythonOp.WeightedSum'
GATED_AGGREGATION_OP = 'prim::PythonOp.GatedSum'


def weighted_sum_flops(inputs, outputs) -> int:
    """One multiply-add per edge and output element (the edge weights are a
    constant argument, not a traced input)."""
    return math.prod(get_shape(outputs[0])) * len(inputs)


def gated_sum_flops(inputs, outputs) -> int:
    """The same for a dynamic node's sum, whose first input is the
    per-sample coefficients."""
    return math.prod(get_shape(outputs[0])) * (len(inputs) - 1)


# Every FlopAnalyzer counts the aggregation, so mmdet's and mmpretrain's own
# get_flops tools (get_model_complexity_info) do too once mmtopo is imported.
# The routers are Linear layers and global average pools, which mmengine
# counts itself.
complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(
    AGGREGATION_OP, weighted_sum_flops)
complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(
    GATED_AGGREGATION_OP, gated_sum_flops)


def flop_analyzer(model: torch.nn.Module, inputs: tuple) -> FlopAnalyzer:
    """mmengine's ``FlopAnalyzer`` for ``model(*inputs)``, aggregation
    included, quiet about the ops it does not count."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer


def count_flops(model: torch.nn.Module, inputs: tuple) -> int:
    """Total FLOPs (multiply-adds, as mmengine counts them) of
    ``model(*inputs)`` in eval mode, aggregations included."""
    model.eval()
    with torch.no_grad():
        return flop_analyzer(model, inputs).total()


def densified(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every learnable edge at 1: the dense graph
    the FLOPs budgets are fractions of (fixed graphs stay as built)."""
    from ..models.layers import StageGraph
    dense = copy.deepcopy(model)
    with torch.no_grad():
        for stage in dense.modules():
            if isinstance(stage, StageGraph) and stage.learnable:
                stage.edge_weights.copy_(stage.edge_mask.float())
    return dense


class BackboneCosts:
    """What each block and each edge of a topology backbone costs, measured
    once on the dense graph (every edge active), so that the FLOPs and
    parameters of any pruning of it follow without tracing again.

    Only whole blocks and edges can be saved, so the fraction of the dense
    FLOPs left drops only when a block dies (no active input, or no path to
    the stage output) or an edge goes to zero.

    Args:
        backbone: a topology backbone (``TopoResNet``, ``TopoRegNet``,
            ...: has ``stages`` and ``stage_names``).
        input_shape: ``(C, H, W)`` of one image. Within a stage every block
            sees the same size, so the fractions hardly depend on it.
    """

    def __init__(self,
                 backbone: torch.nn.Module,
                 input_shape: Sequence[int] = (3, 224, 224)):
        dense = densified(backbone)
        names = list(dense.stage_names)
        dense.eval()
        with torch.no_grad():
            device = next(dense.parameters()).device
            image = torch.zeros(1, *input_shape, device=device)
            by_module = flop_analyzer(dense, (image, )).by_module()
        self.total = by_module['']
        # parameters as the deployed (pruned, fixed) graph holds them: its
        # edge weights are buffers there, so the edges count none
        params = parameter_count(dense)
        self.total_params = params[''] - sum(stage.edge_weights.numel()
                                             for stage in dense.stage_graphs
                                             if stage.learnable)
        self.block_params: List[Dict[int, int]] = []
        self.blocks: List[Dict[int, int]] = []
        self.edge: List[float] = []
        self.router_edge: List[Dict[int, float]] = []
        for name, stage in zip(names, dense.stage_graphs):
            blocks = {
                k: by_module[f'{name}.{k}']
                for k in range(len(stage)) if k not in stage.removed
            }
            self.blocks.append(blocks)
            self.block_params.append(
                {k: params[f'{name}.{k}']
                 for k in blocks})
            # a router's FLOPs are S * (C * h + h) for S candidates: a share
            # per in-edge of its node
            routers = {
                j: by_module[f'{name}.routers.{j}']
                for j in stage.routed_nodes
            }
            self.router_edge.append({
                j: f / len(stage.sources_of(j))
                for j, f in routers.items()
            })
            # the sums cost C * H * W per edge, and the routers' global
            # pooling as much per pooled node
            units = int(stage.edge_mask.sum()) + len(
                _pooled(stage.edges(), list(routers)))
            self.edge.append((by_module[name] - sum(blocks.values()) -
                              sum(routers.values())) / max(units, 1))

    def flops(self, graphs: Sequence[StageGraphInfo]) -> float:
        """FLOPs of the backbone pruned at 0 (exact zero edges dropped, dead
        blocks removed), for its current ``topology_graphs()``."""
        saved = 0.0
        for blocks, edge, router_edge, graph in zip(self.blocks, self.edge,
                                                    self.router_edge, graphs):
            kept_edges, kept = prune_graph(graph.num_nodes, graph.edges)
            saved += sum(f for k, f in blocks.items() if not kept[k])
            saved += edge * (len(graph.edges) - len(kept_edges))
            if graph.routed:
                left = {(i, j) for i, j, _ in kept_edges}
                saved += sum(router_edge[j] for i, j, _ in graph.edges
                             if j in router_edge and (i, j) not in left)
                saved += edge * (
                    len(_pooled(graph.edges, graph.routed)) -
                    len(_pooled(kept_edges, graph.routed)))
        return self.total - saved

    def params(self, graphs: Sequence[StageGraphInfo]) -> float:
        """Parameters of the backbone pruned at 0 (dead blocks removed), for
        its current ``topology_graphs()``: what the deployed model holds.

        A router's size depends on how many inputs its node keeps, which
        this count does not follow, so stages with routers are refused.
        """
        routed = [graph.name for graph in graphs if graph.routed]
        if routed:
            raise ValueError(
                f'the parameters of a pruned graph with routers (dynamic '
                f'stages {routed}) are not counted; budget its FLOPs '
                'instead')
        saved = 0
        for block_params, graph in zip(self.block_params, graphs):
            _, kept = prune_graph(graph.num_nodes, graph.edges)
            saved += sum(p for k, p in block_params.items() if not kept[k])
        return float(self.total_params - saved)

    def fraction(self, graphs: Sequence[StageGraphInfo]) -> float:
        """:meth:`flops` as a fraction of the dense backbone's."""
        return self.flops(graphs) / self.total


def _pooled(edges, routed: Sequence[int]) -> set:
    """The nodes whose output a router pools: sources of an edge into a
    routed node."""
    return {i for i, j, _ in edges if j in routed}
