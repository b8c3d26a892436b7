# TopoConvNeXt-T on ImageNet-1k (mmpretrain's recipe): the blocks of each
# stage (3/3/9/3) learn their wiring, the downsampling layers stay apart.
# A ConvNeXt block adds its own shortcut, so an edge weighs a block's whole
# output and the residual init is the stock ConvNeXt-T.
_base_ = [
    'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
    '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoConvNeXt', topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
# AdamW: lambda on the scale of the learning rate; the recipe's EMA hook
# averages the edges too (prune_topology.py reads the edges to prune from
# the raw weights)
custom_hooks = [
    *_base_.custom_hooks,
    dict(_base_.edge_sparsity_hook, lambda_=0.1, interval=100)
]
