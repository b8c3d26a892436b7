"""The stage graph and what it is made of, one job a module: the autograd
functions of the weighted sums, the static stage, the router, and the
dynamic stage built on both."""
from .compiling import is_compiling
from .dynamic_stage import DynamicStageGraph
from .edge_functions import (EDGE_GRADS, EdgeGradients, EdgeSink, FanOut,
                             GatedSum, WeightedSum, edge_grad_scale, gated_sum,
                             recompute_sums, stacked_fan_out, stacks_gradients,
                             weighted_sum)
from .router import EdgeRouter
from .stage_graph import GRAPH_MISMATCH, StageGraph, edge_values_read

__all__ = [
    'EDGE_GRADS', 'DynamicStageGraph', 'EdgeGradients', 'EdgeRouter',
    'EdgeSink', 'FanOut', 'GatedSum', 'GRAPH_MISMATCH', 'StageGraph',
    'WeightedSum', 'edge_grad_scale', 'edge_values_read', 'gated_sum',
    'is_compiling', 'recompute_sums', 'stacked_fan_out', 'stacks_gradients',
    'weighted_sum'
]
