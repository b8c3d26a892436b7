# The reference on the harder toy set (python -m mmtopo.datasets.toy_coco
# data/toy_coco_hard --set toy_coco_hard): eight shape classes, some alike,
# small overlapping objects, clutter and noisy textured backgrounds; 200
# train, 100 val and 200 held-out test images at 128x128. mmdet's stock
# ResNet-18 in the toy Faster R-CNN recipe, 8 epochs (400 iterations).
_base_ = './faster_rcnn_r18_fpn_toy.py'

data_root = 'data/toy_coco_hard/'
metainfo = dict(
    classes=('square', 'disk', 'triangle', 'diamond', 'ring', 'star', 'cross',
             'hexagon'))
model = dict(roi_head=dict(bbox_head=dict(num_classes=8)))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test.json')
