# TopoRegNetX-3.2GF with learned connectivity on ImageNet-1k (mmpretrain's
# RegNet recipe, whose PreciseBNHook is kept).
_base_ = 'mmpretrain::regnet/regnetx-3.2gf_8xb64_in1k.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='TopoRegNet',
        out_indices=(3, ),
        # mmpretrain's default (mmdet's ResNet, which TopoResNet extends,
        # freezes its norm layers' statistics)
        norm_eval=False,
        topology=dict(type='learnable', init='residual')))
# no weight decay on the edges: the L1 proximal step is their regularizer
optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
custom_hooks = [
    dict(type='PreciseBNHook', num_samples=8192, interval=1,
         priority='ABOVE_NORMAL'),
    dict(type='EdgeSparsityHook', lambda_=1e-4, interval=100)
]
