# TopoRegNetX-3.2GF with learned connectivity on ImageNet-1k (mmpretrain's
# RegNet recipe, whose PreciseBNHook is kept).
_base_ = [
    'mmpretrain::regnet/regnetx-3.2gf_8xb64_in1k.py',
    '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoRegNet',
        out_indices=(3, ),
        # mmpretrain's default (mmdet's RegNet, which TopoRegNet extends,
        # freezes its norm layers' statistics)
        norm_eval=False,
        topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
custom_hooks = [
    dict(
        type='PreciseBNHook',
        num_samples=8192,
        interval=1,
        priority='ABOVE_NORMAL'),
    dict(_base_.edge_sparsity_hook, interval=100)
]
