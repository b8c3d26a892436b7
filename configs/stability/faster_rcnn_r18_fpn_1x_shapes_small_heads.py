# The stock-recipe stability run with toy-sized heads: a 64-channel FPN and
# RPN, 256-d box head FCs and 128 sampled RoIs instead of mmdet's 256 /
# 1024 / 512, which cost about 2 s an iteration on 2 CPU cores. The
# optimizer, learning rate, warm-up, schedule and batch stay mmdet's.
_base_ = './faster_rcnn_r18_fpn_1x_shapes.py'

model = dict(
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))
