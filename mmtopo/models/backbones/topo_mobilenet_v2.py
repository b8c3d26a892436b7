"""TopoMobileNetV2: mmdet's MobileNetV2 with its stages rewired.

The nodes are the inverted-residual blocks of ``layer1`` .. ``layer7``.
Node 0 of each stage is its first block, the only one that changes the
shape (stride or width) and so the only one without the identity shortcut;
the others keep it and add their input. The closing 1x1 ``conv2`` is not a
stage of blocks and is left as it is. ``layer1`` and ``layer7`` have one
block each, hence a single fixed edge: stock behaviour.
"""
from typing import List

from mmdet.models.backbones.mobilenet_v2 import MobileNetV2

from ...registry import register_model
from .rewiring import TopoMixin


@register_model
class TopoMobileNetV2(TopoMixin, MobileNetV2):
    """MobileNetV2 (``widen_factor``, ``out_indices`` over ``layer1``..
    ``layer7`` and ``conv2``) whose stages are weighted DAGs."""

    def stage_layers(self) -> List[str]:
        return [f'layer{i + 1}' for i in range(len(self.arch_settings))]
