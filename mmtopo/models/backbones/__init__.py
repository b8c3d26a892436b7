from .rewiring import TopoMixin, rewire_stages
from .topo_mobilenet_v2 import TopoMobileNetV2
from .topo_regnet import TopoRegNet, TopoRes2Net
from .topo_resnet import (TopoResNet, TopoResNetCIFAR, TopoResNeXt,
                          TopoResNetV1d)

__all__ = [
    'TopoMixin', 'rewire_stages', 'TopoResNet', 'TopoResNetV1d',
    'TopoResNeXt', 'TopoResNetCIFAR', 'TopoRegNet', 'TopoRes2Net',
    'TopoMobileNetV2'
]
