from . import backbones
from .backbones import (TopoCSPDarknet, TopoCSPNeXt, TopoMixin,
                        TopoMobileNetV2, TopoRegNet, TopoRes2Net, TopoResNet,
                        TopoResNetCIFAR, TopoResNetV1d, TopoResNeXt,
                        TopoSwinTransformer, rewire_stages, topology_backbone,
                        topology_backbones)
from .graph import StageGraphInfo
from .layers import DynamicStageGraph, StageGraph, WeightedSum, weighted_sum
from .topology import StageTopology, build_stage_topology, build_topologies

__all__ = [
    'TopoMixin', 'rewire_stages', 'topology_backbone', 'topology_backbones',
    'TopoResNet', 'TopoResNetV1d', 'TopoResNeXt', 'TopoResNetCIFAR',
    'TopoRegNet', 'TopoRes2Net', 'TopoMobileNetV2', 'TopoCSPNeXt',
    'TopoCSPDarknet', 'TopoSwinTransformer', 'StageGraph', 'DynamicStageGraph',
    'StageGraphInfo', 'WeightedSum', 'weighted_sum', 'StageTopology',
    'build_stage_topology', 'build_topologies'
]

if hasattr(backbones, 'TopoConvNeXt'):  # where mmpretrain is installed
    TopoConvNeXt = backbones.TopoConvNeXt
    __all__.append('TopoConvNeXt')
