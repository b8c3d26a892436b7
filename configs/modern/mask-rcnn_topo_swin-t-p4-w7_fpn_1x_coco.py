# Mask R-CNN with a TopoSwinTransformer-T: the Swin blocks of each stage
# (2/2/6/2) learn their wiring, the patch merging stays after them. Swin's
# blocks add their own shortcuts, so an edge weighs a block's whole output
# and the residual init is the stock Swin-T (its ImageNet checkpoint loads
# unchanged). mmdet's Swin recipe (AdamW, its paramwise_cfg) is kept.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoSwinTransformer',
        topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
# AdamW: lambda on the scale of the learning rate (see RTMDet-l's config)
custom_hooks = [dict(_base_.edge_sparsity_hook, lambda_=0.1)]
