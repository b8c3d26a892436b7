# The digits classifier with the complete wiring (fixed edge weights).
_base_ = './topo_resnet18_cifar_digits.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='complete')))
custom_hooks = []
