"""TopoCSPNeXt (RTMDet) and TopoCSPDarknet (YOLOX): the blocks of each
stage's CSP layer as a weighted DAG.

A stage of these backbones is ``[ConvModule (stride 2), (SPPBottleneck),
CSPLayer]``; the CSP layer splits its input into a short branch and a main
branch, runs the main branch through ``blocks`` (all of one shape), and
concatenates the two for ``final_conv``. The rewired sequence is
``CSPLayer.blocks``: node 0 is its first block, the output node what
``final_conv`` takes from the main branch. The short branch, the
concatenation and ``final_conv`` stay as they are. Each block keeps its own
identity shortcut (``add_identity``), as ResNet's blocks do, so the
``residual`` wiring, the chain of the blocks, is the stock backbone.
A stage whose CSP layer has one block (RTMDet-tiny's ``deepen_factor``
rounds every stage to one) has a single fixed edge.
"""
from typing import List

from mmdet.models.backbones.csp_darknet import CSPDarknet
from mmdet.models.backbones.cspnext import CSPNeXt
from mmdet.models.layers import CSPLayer

from ...registry import register_model
from .rewiring import TopoMixin


class CSPStagesMixin:
    """The CSP layer's blocks of every stage, as the stages to rewire."""

    def stage_layers(self) -> List[str]:
        paths = []
        for name in self.layers[1:]:  # the stem has no blocks
            for index, module in enumerate(getattr(self, name)):
                if isinstance(module, CSPLayer):
                    paths.append(f'{name}.{index}.blocks')
        return paths


@register_model
class TopoCSPNeXt(CSPStagesMixin, TopoMixin, CSPNeXt):
    """CSPNeXt (``arch``, ``deepen_factor``, ``widen_factor``, ...) whose
    CSP layers' blocks are weighted DAGs."""


@register_model
class TopoCSPDarknet(CSPStagesMixin, TopoMixin, CSPDarknet):
    """CSPDarknet (``arch``, ``deepen_factor``, ``widen_factor``, ...) whose
    CSP layers' blocks are weighted DAGs."""
