# Faster R-CNN, TopoMobileNetV2 with learned connectivity, FPN, COCO 1x.
# mmdet has no stock Faster R-CNN for MobileNetV2: this is its R-50 FPN
# recipe with the backbone of mmdet's MobileNetV2 detectors (YOLOv3,
# SSDlite) and its ImageNet checkpoint, which the residual init makes a
# valid start. The FPN takes layer2, layer3, layer5 and layer7 (strides 4,
# 8, 16, 32). layer1 and layer7 hold one block each, so their single edge
# stays fixed; the other five stages learn their wiring.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='TopoMobileNetV2',
        topology=dict(type='learnable', init='residual'),
        out_indices=(1, 2, 4, 6),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 320]))

optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [_base_.edge_sparsity_hook]
