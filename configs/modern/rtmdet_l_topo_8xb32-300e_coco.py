# RTMDet-l with a TopoCSPNeXt backbone: the blocks of each stage's CSP layer
# (3/6/6/3) learn their wiring; the residual init makes mmdet's ImageNet
# CSPNeXt-l checkpoint a valid start. RTMDet's own recipe (AdamW, EMA,
# pipeline switch) is kept; the sparsity hook is added to its hooks.
_base_ = [
    'mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py',
    '../_base_/learned_topology.py'
]
checkpoint = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/cspnext_rsb_pretrain/cspnext-l_imagenet_600e.pth'  # noqa

model = dict(
    backbone=dict(
        type='TopoCSPNeXt',
        topology=dict(type='learnable', init='residual'),
        init_cfg=dict(
            type='Pretrained', prefix='backbone.', checkpoint=checkpoint)))
optim_wrapper = _base_.topology_optim_wrapper
# AdamW normalises an edge's step to about the learning rate, so lambda
# is on that scale (the threshold is lr * lambda); EMAHook averages the
# edges too, and prune_topology.py reads the edges to prune from the raw
# weights (the checkpoint's 'ema_state_dict')
custom_hooks = [
    *_base_.custom_hooks,
    dict(_base_.edge_sparsity_hook, lambda_=0.1, interval=50)
]
