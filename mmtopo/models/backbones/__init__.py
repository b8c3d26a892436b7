from importlib.util import find_spec

from .rewiring import (TopoMixin, rewire_stages, topology_backbone,
                       topology_backbones)
from .topo_csp import TopoCSPDarknet, TopoCSPNeXt
from .topo_mobilenet_v2 import TopoMobileNetV2
from .topo_regnet import TopoRegNet, TopoRes2Net
from .topo_resnet import (TopoResNet, TopoResNetCIFAR, TopoResNetV1d,
                          TopoResNeXt)
from .topo_swin import TopoSwinTransformer

__all__ = [
    'TopoMixin', 'rewire_stages', 'topology_backbone', 'topology_backbones',
    'TopoResNet', 'TopoResNetV1d', 'TopoResNeXt', 'TopoResNetCIFAR',
    'TopoRegNet', 'TopoRes2Net', 'TopoMobileNetV2', 'TopoCSPNeXt',
    'TopoCSPDarknet', 'TopoSwinTransformer'
]

# ConvNeXt is mmpretrain's: only where mmpretrain is installed (mmtopo
# works without it)
if find_spec('mmpretrain') is not None:
    from .topo_convnext import TopoConvNeXt  # noqa: F401
    __all__.append('TopoConvNeXt')
