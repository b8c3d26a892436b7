# mmdet's stock Faster R-CNN recipe (faster-rcnn_r50_fpn_1x_coco.py: SGD lr
# 0.02, its 500-iteration warm-up and steps, no clipping) as it is, with a
# ResNet-18 from scratch, batch 2, on the toy shapes set at 160x160: 180
# training images, 90 iterations an epoch. Only the data, the length of
# training and the backbone change; tools/analysis_tools/check_stability.py
# swaps the backbone type (stock ResNet, TopoResNet residual or learnable)
# and sets the length.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

data_root = 'data/toy_coco/'
metainfo = dict(classes=('square', 'disk', 'triangle'))
model = dict(
    backbone=dict(depth=18, init_cfg=None, norm_eval=False, frozen_stages=-1),
    neck=dict(in_channels=[64, 128, 256, 512]))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        metainfo=metainfo,
        pipeline=pipeline,
        indices=180))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
epochs = 4  # x 90 iterations: inside the recipe's warm-up
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=epochs, max_keep_ckpts=1))
