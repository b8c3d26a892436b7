# TopoResNet-18 (CIFAR stem, 16 base channels) with learnable connectivity on
# scikit-learn's handwritten digits (python -m mmtopo.datasets.digits
# data/digits): 1438 train / 359 val real 8x8 images, upscaled to 32x32.
# Under a minute on 2 CPU cores.
_base_ = [
    'mmpretrain::_base_/default_runtime.py', '../_base_/learned_topology.py'
]

data_root = 'data/digits'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='TopoResNetCIFAR',
        depth=18,
        base_channels=16,
        out_indices=(3, ),
        topology=dict(type='learnable', init='residual')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
data_preprocessor = dict(
    num_classes=10, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='RandomCrop', crop_size=32, padding=2),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 10
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    **_base_.topology_optim_wrapper)
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs)
custom_hooks = [
    dict(_base_.edge_sparsity_hook, lambda_=1e-3, interval=10),
    dict(type='TopologyVisualizationHook', interval=max_epochs),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
