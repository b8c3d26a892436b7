# The reference of the equal-cost comparison on the toy COCO set: mmdet's
# stock ResNet-18 in the toy Faster R-CNN recipe (8 epochs, 400
# iterations), no topology at all.
_base_ = '../toy/faster_rcnn_topo_r18_fpn_toy.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        norm_eval=False,
        frozen_stages=-1,
        init_cfg=None))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
custom_hooks = []
