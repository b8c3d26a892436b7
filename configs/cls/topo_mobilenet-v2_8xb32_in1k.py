# TopoMobileNetV2 with learned connectivity on ImageNet-1k (mmpretrain's
# MobileNetV2 recipe). The backbone is mmdet's MobileNetV2, the same network
# as mmpretrain's under other parameter names, so mmdet's checkpoints load.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='TopoMobileNetV2',
        out_indices=(7, ),
        topology=dict(type='learnable', init='residual')))
# no weight decay on the edges: the L1 proximal step is their regularizer
optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
custom_hooks = [dict(type='EdgeSparsityHook', lambda_=1e-4, interval=100)]
