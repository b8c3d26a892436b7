# Faster R-CNN, TopoResNet-50 with learned connectivity, FPN, COCO 1x.
# The residual init makes the ImageNet ResNet-50 checkpoint a valid start.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    './_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoResNet',
        depth=50,
        topology=dict(type='learnable', init='residual'),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [_base_.edge_sparsity_hook]
