# The same toy detector with the stock MobileNetV2 wiring, for comparison.
_base_ = './faster_rcnn_topo_mobilenetv2_fpn_toy.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []
