"""The stage graph and what it is made of, one job a module: the autograd
functions of the weighted sums, the stage module, the traced path."""
from .dynamic import EdgeRouter, GatedSum, dynamic_forward
from .edge_functions import (EDGE_GRADS, EdgeGradients, EdgeSink, FanOut,
                             WeightedSum, edge_grad_scale, recompute_sums,
                             stacked_fan_out, stacks_gradients, weighted_sum)
from .stage_graph import GRAPH_MISMATCH, StageGraph, edge_values_read
from .traceable import is_compiling, traceable_forward

__all__ = [
    'EDGE_GRADS', 'EdgeGradients', 'EdgeRouter', 'GatedSum',
    'dynamic_forward', 'EdgeSink', 'FanOut', 'GRAPH_MISMATCH',
    'StageGraph', 'WeightedSum', 'edge_grad_scale', 'edge_values_read',
    'is_compiling', 'recompute_sums', 'stacked_fan_out', 'stacks_gradients',
    'traceable_forward', 'weighted_sum'
]
