# TopoResNet-18 with learned connectivity on ImageNet-1k (mmpretrain recipe).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='TopoResNet',
        # mmpretrain's default (mmdet's ResNet, which TopoResNet extends,
        # freezes its norm layers' statistics)
        norm_eval=False,
        topology=dict(type='learnable', init='residual')))
# no weight decay on the edges: the L1 proximal step is their regularizer
optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
custom_hooks = [dict(type='EdgeSparsityHook', lambda_=1e-4, interval=100)]
