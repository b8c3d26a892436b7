# Baseline wiring for the paper's comparison: complete, fixed edge weights.
_base_ = '../mask_rcnn_topo_r50_fpn.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='complete')))
custom_hooks = []  # nothing to sparsify: the edges are fixed
