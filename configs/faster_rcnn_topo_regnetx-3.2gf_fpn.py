# Faster R-CNN, TopoRegNetX-3.2GF with learned connectivity, FPN, COCO 1x.
# mmdet's RegNet recipe; the residual init makes its ImageNet checkpoint a
# valid start (only the edge tensors are not in it).
_base_ = [
    'mmdet::regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py',
    './_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoRegNet', topology=dict(type='learnable', init='residual')))

optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [_base_.edge_sparsity_hook]
