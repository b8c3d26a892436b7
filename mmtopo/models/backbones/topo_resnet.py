"""TopoResNet: mmdet's ResNet family with every stage rewired as a weighted
DAG of its blocks (:mod:`~mmtopo.models.backbones.rewiring`).

mmdet's own code builds the backbone first, so the stem, the blocks,
``frozen_stages``, ``norm_eval``, ``with_cp``, ``dcn``, ``plugins`` and
``init_cfg`` behave exactly as in ``mmdet.models.ResNet`` and parameter names
match stock checkpoints.
"""
from typing import Optional, Sequence

from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import ResNet, ResNetV1d
from mmdet.models.backbones.resnext import ResNeXt
from torch import nn

from ...registry import register_model
from .rewiring import TopoMixin


class StageBlocksMixin:
    """Adds ``stage_blocks`` to mmdet's ResNet family: the number of blocks
    in each stage, for any layout, with the block type and widths of
    ``depth``. ``depth=18, stage_blocks=(3, 4, 6, 3)`` is ResNet-34's
    layout; ``depth=50, stage_blocks=(6, 8, 12, 6)`` twice ResNet-50's
    blocks. A larger layout than the model to deploy is the search space a
    learned, pruned graph is chosen from. None: the depth's own layout."""

    def __init__(self,
                 *args,
                 stage_blocks: Optional[Sequence[int]] = None,
                 **kwargs):
        if stage_blocks is not None:
            depth = kwargs['depth'] if 'depth' in kwargs else args[0]
            num_stages = kwargs.get('num_stages', 4)
            counts = isinstance(stage_blocks, (list, tuple)) and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1
                for n in stage_blocks)
            if not (counts and len(stage_blocks) == num_stages):
                raise ValueError(
                    f'stage_blocks must list {num_stages} positive integers '
                    f'(one per stage, num_stages={num_stages}), got '
                    f'{stage_blocks!r}')
            if depth in type(self).arch_settings:
                block = type(self).arch_settings[depth][0]
                # this instance's layout; the class's stays as it is
                self.arch_settings = {
                    **type(self).arch_settings, depth:
                    (block, tuple(stage_blocks))
                }
        super().__init__(*args, **kwargs)


@register_model
class TopoResNet(StageBlocksMixin, TopoMixin, ResNet):
    """ResNet (depth 18/34/50/101/152, or any ``stage_blocks`` layout)
    whose stages are weighted DAGs."""


@register_model
class TopoResNetV1d(StageBlocksMixin, TopoMixin, ResNetV1d):
    """ResNetV1d (deep stem, avg-down shortcut) whose stages are DAGs."""


@register_model
class TopoResNeXt(StageBlocksMixin, TopoMixin, ResNeXt):
    """ResNeXt (``groups``, ``base_width``) whose stages are DAGs."""


@register_model
class TopoResNetCIFAR(TopoResNet):
    """TopoResNet for 32x32 inputs: a 3x3 stride-1 stem and no max-pool, as
    mmpretrain's ``ResNet_CIFAR``, whose default it keeps:
    ``norm_eval=False`` (the norm layers train)."""

    def __init__(self,
                 *args,
                 deep_stem: bool = False,
                 norm_eval: bool = False,
                 **kwargs):
        if deep_stem:
            raise ValueError('TopoResNetCIFAR has a plain 3x3 stem: '
                             f'deep_stem must be False, got {deep_stem!r}')
        super().__init__(*args, deep_stem=False, norm_eval=norm_eval, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        self.conv1 = build_conv_layer(
            self.conv_cfg,
            in_channels,
            stem_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False)
        self.norm1_name, norm1 = build_norm_layer(
            self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
