from .topo_resnet import TopoResNet, TopoResNeXt, TopoResNetV1d

__all__ = ['TopoResNet', 'TopoResNetV1d', 'TopoResNeXt']
