"""TopoConvNeXt: mmpretrain's ConvNeXt with its stages as weighted DAGs.

ConvNeXt keeps each stage's blocks in ``stages[i]`` (all of one shape) and
the downsampling layers apart in ``downsample_layers``, so a stage is the
sequence to rewire as it is. A ConvNeXt block adds its input to its own
output (a layer-scaled, drop-path'd branch), so the ``residual`` wiring is
the stock ConvNeXt; an edge ``i -> j`` of a learned graph weighs block
``i``'s output, shortcut included. Registered in the root registry, so
mmdet configs use ``type='TopoConvNeXt'`` where they would write
``type='mmpretrain.ConvNeXt'``.
"""
from typing import List

from mmpretrain.models.backbones import ConvNeXt

from ...registry import register_model
from .rewiring import TopoMixin


@register_model
class TopoConvNeXt(TopoMixin, ConvNeXt):
    """ConvNeXt (``arch``, ``out_indices``, ``drop_path_rate``,
    ``frozen_stages``, ``gap_before_final_norm``, ``with_cp``,
    ``init_cfg``, ...) whose stages are weighted DAGs."""

    def stage_layers(self) -> List[str]:
        return [f'stages.{i}' for i in range(len(self.stages))]
