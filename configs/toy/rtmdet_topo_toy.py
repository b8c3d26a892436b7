# RTMDet with a learnable-topology TopoCSPNeXt on the toy COCO set
# (python -m mmtopo.datasets.toy_coco data/toy_coco): RTMDet's head and
# neck at toy widths, its CSPNeXt at deepen_factor 0.67 (2/4/4/2 blocks a
# CSP layer) and widen_factor 0.25, 128x128 images, 12 epochs from
# scratch; RTMDet's optimizer (AdamW), without its mosaic pipeline (the
# images are tiny), its 300-epoch schedule or its EMA (whose momentum of
# 0.0002 leaves the averaged model near its init over 300 iterations).
_base_ = [
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    '../_base_/learned_topology.py'
]

data_root = 'data/toy_coco/'
metainfo = dict(classes=('square', 'disk', 'triangle'))
img_scale = (128, 128)
model = dict(
    data_preprocessor=dict(batch_augments=None),
    backbone=dict(
        type='TopoCSPNeXt',
        deepen_factor=0.67,
        widen_factor=0.25,
        norm_cfg=dict(type='BN'),
        topology=dict(type='learnable', init='residual'),
        init_cfg=None),
    neck=dict(
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        norm_cfg=dict(type='BN')),
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        norm_cfg=dict(type='BN')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file='annotations/test.json',
        data_prefix=dict(img='test/')))
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test.json')

max_epochs = 12
train_cfg = dict(
    max_epochs=max_epochs, val_interval=max_epochs, dynamic_intervals=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        eta_min=2e-4,
        begin=0,
        end=max_epochs,
        T_max=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True)
]
optim_wrapper = _base_.topology_optim_wrapper
# lambda 0.01, chosen on val over 0.1 (3 seeds: 0.521 +- 0.201 against
# 0.466 +- 0.040; configs/toy/README.md)
custom_hooks = [
    dict(_base_.edge_sparsity_hook, lambda_=0.01, interval=10),
    dict(type='TopologyVisualizationHook', interval=max_epochs),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=8)
