# Faster R-CNN, TopoRegNetX-3.2GF with learned connectivity, FPN, COCO 1x.
# mmdet's RegNet recipe; the residual init makes its ImageNet checkpoint a
# valid start (only the edge tensors are not in it).
_base_ = 'mmdet::regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='TopoRegNet',
        topology=dict(type='learnable', init='residual')))

# no weight decay on the edges: the L1 proximal step is their regularizer
optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
custom_hooks = [dict(type='EdgeSparsityHook', lambda_=1e-4, interval=50)]
