# TopoResNet-18 with learned connectivity on ImageNet-1k (mmpretrain recipe).
_base_ = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoResNet',
        # mmpretrain's default (mmdet's ResNet, which TopoResNet extends,
        # freezes its norm layers' statistics)
        norm_eval=False,
        topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [dict(_base_.edge_sparsity_hook, interval=100)]
