"""FLOPs with the edges counted.

mmengine's ``FlopAnalyzer`` sees the aggregation as an opaque custom autograd
function and counts nothing for it; this registers its multiply-adds.
"""
import math

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

AGGREGATION_OP = 'prim::PythonOp.WeightedSum'


def weighted_sum_flops(inputs, outputs) -> int:
    """One multiply-add per edge and output element (the edge weights are a
    constant argument, not a traced input)."""
    return math.prod(get_shape(outputs[0])) * len(inputs)


def count_flops(model: torch.nn.Module, inputs: tuple) -> int:
    """Total FLOPs (multiply-adds, as mmengine counts them) of
    ``model(*inputs)`` in eval mode, aggregations included."""
    model.eval()
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(AGGREGATION_OP, weighted_sum_flops)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer.total()
