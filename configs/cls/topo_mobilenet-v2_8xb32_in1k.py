# TopoMobileNetV2 with learned connectivity on ImageNet-1k (mmpretrain's
# MobileNetV2 recipe). The backbone is mmdet's MobileNetV2, the same network
# as mmpretrain's under other parameter names, so mmdet's checkpoints load.
_base_ = [
    'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
    '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoMobileNetV2',
        out_indices=(7, ),
        topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [dict(_base_.edge_sparsity_hook, interval=100)]
