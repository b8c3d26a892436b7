# Baseline wiring for the paper's comparison: complete, fixed edge weights.
_base_ = './topo_resnet18_8xb32_in1k.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='complete')))
custom_hooks = []
