from .backbones import (TopoResNet, TopoResNetCIFAR, TopoResNeXt,
                        TopoResNetV1d)
from .graph import StageGraph, WeightedSum, weighted_sum
from .topology import StageTopology, build_stage_topology, build_topologies

__all__ = [
    'TopoResNet', 'TopoResNetV1d', 'TopoResNeXt', 'TopoResNetCIFAR',
    'StageGraph', 'WeightedSum',
    'weighted_sum', 'StageTopology', 'build_stage_topology', 'build_topologies'
]
