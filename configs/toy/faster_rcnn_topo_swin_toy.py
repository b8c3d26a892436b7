# The toy Faster R-CNN (faster_rcnn_topo_r18_fpn_toy.py) with a small
# learnable-topology TopoSwinTransformer (embed 32, 2/2/4/2 blocks,
# window 4), from scratch, under Swin's optimizer (AdamW).
_base_ = './faster_rcnn_topo_r18_fpn_toy.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TopoSwinTransformer',
        embed_dims=32,
        depths=(2, 2, 4, 2),
        num_heads=(1, 2, 4, 8),
        window_size=4,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        topology=dict(type='learnable', init='residual'),
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256]))
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0005,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'edge_weights': dict(decay_mult=0.)
        }))
custom_hooks = [
    dict(type='EdgeSparsityHook', lambda_=0.1, interval=10),
    dict(type='TopologyVisualizationHook', interval=8),
]
