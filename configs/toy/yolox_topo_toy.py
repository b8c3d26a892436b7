# YOLOX with a learnable-topology TopoCSPDarknet on the toy COCO set:
# YOLOX's head and PAFPN at toy widths, its CSPDarknet at deepen_factor
# 0.33 (1/3/3/1 blocks a CSP layer, YOLOX-s's depth) and widen_factor
# 0.25, from scratch. The data, schedule and optimizer (AdamW) are the toy
# RTMDet's, so the two CSP families train alike; YOLOX's mosaic / mixup
# pipeline, its 300 epochs and its EMA are left out, as there.
_base_ = './rtmdet_topo_toy.py'

model = dict(
    _delete_=True,
    type='YOLOX',
    data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        type='TopoCSPDarknet',
        deepen_factor=0.33,
        widen_factor=0.25,
        out_indices=(2, 3, 4),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='Swish'),
        topology=dict(type='learnable', init='residual')),
    neck=dict(
        type='YOLOXPAFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='Swish')),
    bbox_head=dict(
        type='YOLOXHead',
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        strides=(8, 16, 32),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='Swish'),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_bbox=dict(
            type='IoULoss',
            mode='square',
            eps=1e-16,
            reduction='sum',
            loss_weight=5.0),
        loss_obj=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
    test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65)))
# lambda 0.01, chosen on val over the RTMDet toy's 0.1 (3 seeds: 0.853
# against 0.827; at 0.1 the hook pruned whole blocks, configs/toy/README.md)
custom_hooks = [
    dict(type='EdgeSparsityHook', lambda_=0.01, interval=10),
    dict(type='TopologyVisualizationHook', interval=12),
]
