# Baseline wiring for the paper's comparison: residual, fixed edge weights.
_base_ = '../faster_rcnn_topo_r50_fpn.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []  # nothing to sparsify: the edges are fixed
