# The toy Faster R-CNN with a small learnable-topology TopoConvNeXt
# (2/2/4/2 blocks, 32-256 channels), from scratch, under the toy Swin's
# recipe (AdamW, 8 epochs).
_base_ = './faster_rcnn_topo_swin_toy.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TopoConvNeXt',
        arch=dict(depths=[2, 2, 4, 2], channels=[32, 64, 128, 256]),
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.1,
        topology=dict(type='learnable', init='residual'),
        init_cfg=None))
