# RTMDet-tiny's cost from a larger search space: RTMDet-tiny's CSPNeXt has
# one block per stage (deepen_factor 0.167), nothing to wire. Here the
# TopoCSPNeXt has RTMDet-s's depth (deepen_factor 0.33: 1/2/2/1 blocks) at
# tiny's widths, densely wired, and the sparsity hook prunes it to the
# FLOPs of the stock tiny backbone; then prune and fine-tune
# (tools/topology_search.py). The tiny ImageNet checkpoint initialises the
# blocks it has.
_base_ = [
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    '../_base_/learned_topology.py'
]
reference = dict(
    type='CSPNeXt',
    arch='P5',
    expand_ratio=0.5,
    deepen_factor=0.167,
    widen_factor=0.375,
    channel_attention=True,
    act_cfg=dict(type='SiLU', inplace=True))

model = dict(
    backbone=dict(
        type='TopoCSPNeXt',
        deepen_factor=0.33,
        topology=dict(type='learnable', init='uniform')))
optim_wrapper = _base_.topology_optim_wrapper
search_epochs = 200
train_cfg = dict(max_epochs=search_epochs)
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='EdgeSparsityHook',
        lambda_=0.1,
        begin=1000,
        target_flops=dict(of=reference),
        lambda_growth=1.0005,
        flops_input_shape=(3, 640, 640),
        interval=50),
]
# the last 100 of the 300 epochs on the fixed, pruned graph
finetune_cfg = dict(train_cfg=dict(max_epochs=100))
