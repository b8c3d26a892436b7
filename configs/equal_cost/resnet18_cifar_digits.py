# The reference of the equal-cost comparison on the digits split three
# ways (python -m mmtopo.datasets.digits data/digits_3way --test-split):
# mmpretrain's stock ResNet_CIFAR-18 at 16 base channels in the digits
# recipe of configs/cls (SGD lr 0.1, cosine), 14 epochs (238 iterations),
# scored on val and on the held-out test split.
_base_ = '../cls/topo_resnet18_cifar_digits.py'

data_root = 'data/digits_3way'
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet_CIFAR',
        depth=18,
        base_channels=16,
        out_indices=(3, )))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root, data_prefix='test'))
max_epochs = 14
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs)
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
custom_hooks = []
default_hooks = dict(checkpoint=dict(interval=max_epochs))
