"""TopoResNet: mmdet's ResNet family with every stage rewired as a weighted
DAG of its blocks (:mod:`~mmtopo.models.backbones.rewiring`).

mmdet's own code builds the backbone first, so the stem, the blocks,
``frozen_stages``, ``norm_eval``, ``with_cp``, ``dcn``, ``plugins`` and
``init_cfg`` behave exactly as in ``mmdet.models.ResNet`` and parameter names
match stock checkpoints.
"""
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import ResNet, ResNetV1d
from mmdet.models.backbones.resnext import ResNeXt
from torch import nn

from ...registry import register_model
from .rewiring import TopoMixin


@register_model
class TopoResNet(TopoMixin, ResNet):
    """ResNet (depth 18/34/50/101/152) whose stages are weighted DAGs."""


@register_model
class TopoResNetV1d(TopoMixin, ResNetV1d):
    """ResNetV1d (deep stem, avg-down shortcut) whose stages are DAGs."""


@register_model
class TopoResNeXt(TopoMixin, ResNeXt):
    """ResNeXt (``groups``, ``base_width``) whose stages are DAGs."""


@register_model
class TopoResNetCIFAR(TopoResNet):
    """TopoResNet for 32x32 inputs: a 3x3 stride-1 stem and no max-pool, as
    mmpretrain's ``ResNet_CIFAR``."""

    def __init__(self, *args, deep_stem: bool = False, **kwargs):
        if deep_stem:
            raise ValueError('TopoResNetCIFAR has a plain 3x3 stem: '
                             f'deep_stem must be False, got {deep_stem!r}')
        super().__init__(*args, deep_stem=False, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int):
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels,
                                      stem_channels, kernel_size=3, stride=1,
                                      padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg,
                                                  stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
