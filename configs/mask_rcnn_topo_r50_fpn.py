# Mask R-CNN, TopoResNet-50 with learned connectivity, FPN, COCO 1x.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='TopoResNet',
        depth=50,
        topology=dict(type='learnable', init='residual'),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
custom_hooks = [dict(type='EdgeSparsityHook', lambda_=1e-4, interval=50)]
