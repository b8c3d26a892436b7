"""TopoRegNet and TopoRes2Net: mmdet backbones that hold their stages in
``res_layers`` as ResNet does, so the rewiring needs nothing more than the
mixin."""
from mmdet.models.backbones.regnet import RegNet
from mmdet.models.backbones.res2net import Res2Net

from ...registry import register_model
from .rewiring import TopoMixin


@register_model
class TopoRegNet(TopoMixin, RegNet):
    """RegNet (every mmdet ``arch`` preset, e.g. ``'regnetx_3.2gf'``, or a
    dict) whose stages are weighted DAGs of its X blocks. Presets with a
    one-block stage (``regnetx_400mf``'s first, ``regnetx_12gf``'s last)
    keep that stage's single edge fixed."""


@register_model
class TopoRes2Net(TopoMixin, Res2Net):
    """Res2Net (``scales``, ``base_width``) whose stages are weighted DAGs of
    its Bottle2neck blocks; node 0 is the block with ``stage_type='stage'``
    (the stride and the pooled split), the others are 'normal' blocks."""
