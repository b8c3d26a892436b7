# At ResNet-50's cost on ImageNet-1k: a TopoResNet with twice ResNet-50's
# blocks per stage (6/8/12/6), densely wired, learns its edges under a
# FLOPs budget equal to the stock ResNet-50's, is pruned and fine-tuned:
# 60 + 40 epochs, mmpretrain's 100-epoch step schedule (lr 0.1, x0.1 at
# 30, 60, 90) in all. Run it with tools/topology_search.py; compare with
# mmpretrain's resnet50_8xb32_in1k.py.
_base_ = '../cls/topo_resnet50_8xb32_in1k.py'

reference = dict(type='ResNet', depth=50)
model = dict(
    backbone=dict(
        stage_blocks=(6, 8, 12, 6),
        topology=dict(type='learnable', init='uniform')))

search_epochs = 60
train_cfg = dict(max_epochs=search_epochs)
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1)
custom_hooks = [
    dict(
        type='EdgeSparsityHook',
        lambda_=1e-3,
        begin=1000,
        target_flops=dict(of=reference),
        lambda_growth=1.001,
        flops_input_shape=(3, 224, 224),
        interval=100),
    dict(type='TopologyVisualizationHook', interval=10),
]
# epochs 61-100: lr 0.001, then 0.0001 from epoch 91
finetune_cfg = dict(
    train_cfg=dict(max_epochs=40),
    optim_wrapper=dict(optimizer=dict(lr=0.001)),
    param_scheduler=dict(
        type='MultiStepLR', by_epoch=True, milestones=[30], gamma=0.1))
