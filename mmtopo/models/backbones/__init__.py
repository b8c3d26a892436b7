from .topo_resnet import (TopoResNet, TopoResNetCIFAR, TopoResNeXt,
                          TopoResNetV1d)

__all__ = ['TopoResNet', 'TopoResNetV1d', 'TopoResNeXt', 'TopoResNetCIFAR']
