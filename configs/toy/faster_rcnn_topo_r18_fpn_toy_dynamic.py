# The toy detector with instance-aware (dynamic) wiring: the learnable graph
# plus a router per node that gates its in-edges per image.
_base_ = './faster_rcnn_topo_r18_fpn_toy.py'
model = dict(
    backbone=dict(
        topology=dict(_delete_=True, type='dynamic', init='residual')))
