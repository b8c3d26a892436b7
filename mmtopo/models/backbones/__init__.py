from .rewiring import (TopoMixin, rewire_stages, topology_backbone,
                       topology_backbones)
from .topo_mobilenet_v2 import TopoMobileNetV2
from .topo_regnet import TopoRegNet, TopoRes2Net
from .topo_resnet import (TopoResNet, TopoResNetCIFAR, TopoResNetV1d,
                          TopoResNeXt)

__all__ = [
    'TopoMixin', 'rewire_stages', 'topology_backbone', 'topology_backbones',
    'TopoResNet', 'TopoResNetV1d', 'TopoResNeXt', 'TopoResNetCIFAR',
    'TopoRegNet', 'TopoRes2Net', 'TopoMobileNetV2'
]
