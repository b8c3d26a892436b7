# The search of faster_rcnn_topo_r34to18_fpn_toy.py on the harder toy set
# (faster_rcnn_r18_fpn_toy_hard.py is its reference): the same layout,
# budget and 5 + 3 epochs.
_base_ = './faster_rcnn_topo_r34to18_fpn_toy.py'

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
