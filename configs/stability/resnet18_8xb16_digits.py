# mmpretrain's stock CIFAR recipe (resnet18_8xb16_cifar10.py: SGD lr 0.1,
# momentum 0.9, weight decay 5e-4, batch 16) as it is, on the handwritten
# digits at 32x32 (1438 train images: 90 iterations an epoch). Only the
# data, the length of training and the backbone change;
# tools/analysis_tools/check_stability.py and ablate_edges.py swap the
# backbone and set the length.
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

data_root = 'data/digits'
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackInputs')
]
data_preprocessor = dict(
    num_classes=10, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False)
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
epochs = 3
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=epochs, max_keep_ckpts=1))
