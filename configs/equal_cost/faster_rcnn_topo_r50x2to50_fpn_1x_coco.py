# At ResNet-50's cost on COCO: a TopoResNet with twice ResNet-50's blocks
# per stage (6/8/12/6 Bottlenecks at ResNet-50's widths, every block wired
# to every later one) learns its edges under a FLOPs budget equal to the
# stock ResNet-50's, is pruned to a fixed graph at or below it and
# fine-tuned: 8 + 4 epochs, mmdet's 1x schedule (12) in all, with its lr
# steps at epochs 8 and 11. Run it with tools/topology_search.py; compare
# with mmdet's faster-rcnn_r50_fpn_1x_coco.py. The ImageNet ResNet-50
# checkpoint initialises the blocks it has (the first 3/4/6/3 of each
# stage); the others start from mmdet's init.
_base_ = '../faster_rcnn_topo_r50_fpn.py'

reference = dict(type='ResNet', depth=50)
model = dict(
    backbone=dict(
        stage_blocks=(6, 8, 12, 6),
        topology=dict(type='learnable', init='uniform')))

search_epochs = 8
train_cfg = dict(max_epochs=search_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
custom_hooks = [
    dict(
        type='EdgeSparsityHook',
        lambda_=1e-3,
        begin=500,  # after the warm-up
        target_flops=dict(of=reference),
        lambda_growth=1.002,
        flops_input_shape=(3, 800, 1333),
        interval=50),
    dict(type='TopologyVisualizationHook', interval=1),
]
# the rest of the 1x schedule: epochs 9-12, lr 0.002, then 0.0002 at 12
finetune_cfg = dict(
    train_cfg=dict(max_epochs=4),
    optim_wrapper=dict(optimizer=dict(lr=0.002)),
    param_scheduler=[
        dict(
            type='MultiStepLR',
            begin=0,
            end=4,
            by_epoch=True,
            milestones=[3],
            gamma=0.1)
    ])
