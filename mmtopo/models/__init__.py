from .backbones import (TopoMixin, TopoMobileNetV2, TopoRegNet, TopoRes2Net,
                        TopoResNet, TopoResNetCIFAR, TopoResNeXt,
                        TopoResNetV1d, rewire_stages)
from .layers import StageGraph, WeightedSum, weighted_sum
from .topology import StageTopology, build_stage_topology, build_topologies

__all__ = [
    'TopoMixin', 'rewire_stages', 'TopoResNet', 'TopoResNetV1d',
    'TopoResNeXt', 'TopoResNetCIFAR', 'TopoRegNet', 'TopoRes2Net',
    'TopoMobileNetV2', 'StageGraph', 'WeightedSum', 'weighted_sum',
    'StageTopology', 'build_stage_topology', 'build_topologies'
]
