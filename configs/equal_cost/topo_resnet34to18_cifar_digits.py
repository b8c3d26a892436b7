# Learn the wiring of a larger space, deploy it at the reference's cost, on
# the digits: a TopoResNetCIFAR with ResNet-34's layout (3/4/6/3 blocks at
# ResNet-18's 16-channel widths, densely wired) learns its edges under a
# FLOPs budget equal to the stock ResNet_CIFAR-18's, is pruned and
# fine-tuned: 9 + 5 epochs, the reference's 14 (resnet18_cifar_digits.py).
_base_ = '../cls/topo_resnet18_cifar_digits.py'

data_root = 'data/digits_3way'
reference = dict(
    type='ResNet_CIFAR', depth=18, base_channels=16, out_indices=(3, ))
model = dict(
    backbone=dict(
        stage_blocks=(3, 4, 6, 3),
        topology=dict(type='learnable', init='uniform')))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root, data_prefix='test'))

# the reference's cosine over 14 epochs, of which the search takes 9
search_epochs = 9
train_cfg = dict(max_epochs=search_epochs, val_interval=search_epochs)
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=14, end=search_epochs)
# lambda from 0.01 growing 6% an iteration from iteration 10: on val (seed
# 0) the budget was met at epoch 6 of 9; growing 3% from iteration 20 met
# it only in the last epoch, 4% from 0.05 at epoch 4 (docs/results.md).
# Holding the parameters to the reference's as well (target_params) scored
# lower on val, 99.00 against 99.16 (5 seeds), and did not bring batch-1
# inference time to the reference's
custom_hooks = [
    dict(
        type='EdgeSparsityHook',
        lambda_=1e-2,
        begin=10,
        target_flops=dict(of=reference),
        lambda_growth=1.06,
        flops_input_shape=(3, 32, 32),
        interval=10),
    dict(type='TopologyVisualizationHook', interval=search_epochs),
]
default_hooks = dict(checkpoint=dict(interval=search_epochs))
# merged into the pruned config to fine-tune it from the pruned checkpoint:
# the last 5 epochs, a cosine from the reference's lr at epoch 9 to 0
finetune_cfg = dict(
    train_cfg=dict(max_epochs=5, val_interval=5),
    optim_wrapper=dict(optimizer=dict(lr=0.0283)),
    param_scheduler=dict(type='CosineAnnealingLR', by_epoch=True, T_max=5),
    default_hooks=dict(checkpoint=dict(interval=5)))
