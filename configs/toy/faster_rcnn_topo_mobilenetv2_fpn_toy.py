# The toy Faster R-CNN (faster_rcnn_topo_r18_fpn_toy.py: embedded toy COCO,
# 128x128, from scratch) with a learnable-topology TopoMobileNetV2: layer2,
# layer3, layer5 and layer7 feed the FPN (strides 4 to 32).
_base_ = './faster_rcnn_topo_r18_fpn_toy.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TopoMobileNetV2',
        topology=dict(type='learnable', init='residual'),
        out_indices=(1, 2, 4, 6),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[24, 32, 96, 320]))
