# Learn the wiring of a larger space, deploy it at the reference's cost: a
# TopoResNet with ResNet-34's stage layout (3/4/6/3 blocks, ResNet-18's
# widths, every block wired to every later one) learns its edges under a
# FLOPs budget equal to the stock ResNet-18's, is pruned to a fixed graph
# at or below that budget, and is fine-tuned; 5 + 3 epochs, the
# reference's 8 (tools/topology_search.py runs the three steps).
_base_ = '../toy/faster_rcnn_topo_r18_fpn_toy.py'

reference = dict(type='ResNet', depth=18)
model = dict(
    backbone=dict(
        stage_blocks=(3, 4, 6, 3),
        topology=dict(type='learnable', init='uniform')))

search_epochs = 5
train_cfg = dict(max_epochs=search_epochs, val_interval=search_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
]
# the edges at 10x the lr: their step is lr * lambda-scaled, and the search
# is short
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'edge_weights': dict(lr_mult=10., decay_mult=0.)}))
# lambda from 0.05 growing 4% an iteration after the warm-up: on the hard
# set's val (seed 0) the budget was met at iteration 110 of 250, leaving
# the rest of the search to recover (docs/results.md)
custom_hooks = [
    dict(
        type='EdgeSparsityHook',
        lambda_=5e-2,
        begin=50,  # after the warm-up
        target_flops=dict(of=reference),
        lambda_growth=1.04,
        flops_input_shape=(3, 128, 128),
        interval=10),
    dict(type='TopologyVisualizationHook', interval=search_epochs),
]
# merged into the pruned (fixed-graph) config to fine-tune it from the
# pruned checkpoint: the rest of the reference's schedule, its lr step
# included
finetune_cfg = dict(
    train_cfg=dict(max_epochs=3, val_interval=3),
    param_scheduler=[
        dict(
            type='MultiStepLR',
            begin=0,
            end=3,
            by_epoch=True,
            milestones=[1],
            gamma=0.1)
    ])
