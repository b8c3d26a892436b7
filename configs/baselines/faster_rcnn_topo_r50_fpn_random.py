# Baseline wiring for the paper's comparison: random, fixed edge weights.
_base_ = '../faster_rcnn_topo_r50_fpn.py'
model = dict(
    backbone=dict(
        topology=dict(
            _delete_=True, type='random', graph='ws', k=2, p=0.5, seed=0)))
custom_hooks = []  # nothing to sparsify: the edges are fixed
