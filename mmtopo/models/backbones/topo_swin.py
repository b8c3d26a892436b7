"""TopoSwinTransformer: the Swin blocks of each stage as a weighted DAG.

A stage of mmdet's ``SwinTransformer`` is a ``SwinBlockSequence``: its
blocks, alternately regular and shifted windows, each taking the tokens
``(N, L, C)`` and the grid's shape ``(H, W)``, then the ``PatchMerging``
that halves the grid for the next stage. The rewired sequence is the
blocks; the patch merging stays after the stage graph's output. The
stage graph passes the grid's shape to every block and reduces the edges'
gradients over the tokens' channels (the last dimension).

A Swin block adds its input to its attention's and its MLP's outputs
itself, so the ``residual`` wiring (each block fed the previous one's
output) is the stock Swin; an edge ``i -> j`` of a learned graph weighs
block ``i``'s output, shortcut included, in block ``j``'s input.
"""
from typing import List

from mmdet.models.backbones.swin import SwinBlockSequence, SwinTransformer

from ...registry import register_model
from .rewiring import TopoMixin


class TopoSwinBlockSequence(SwinBlockSequence):
    """A Swin stage whose blocks are one module, the stage graph, called
    once with the grid's shape (the stock stage iterates over them)."""

    def forward(self, x, hw_shape):
        x = self.blocks(x, hw_shape)
        if self.downsample:
            x_down, down_hw_shape = self.downsample(x, hw_shape)
            return x_down, down_hw_shape, x, hw_shape
        return x, hw_shape, x, hw_shape


@register_model
class TopoSwinTransformer(TopoMixin, SwinTransformer):
    """SwinTransformer (``embed_dims``, ``depths``, ``num_heads``,
    ``window_size``, ``drop_path_rate``, ``frozen_stages``, ``with_cp``,
    ``init_cfg``, ...) whose stages' blocks are weighted DAGs."""

    channel_dim = -1  # tokens (N, L, C)

    def stage_layers(self) -> List[str]:
        for stage in self.stages:
            # the stage calls its graph once, with the grid's shape
            stage.__class__ = TopoSwinBlockSequence
        return [f'stages.{i}.blocks' for i in range(len(self.stages))]
