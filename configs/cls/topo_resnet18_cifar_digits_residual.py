# The digits classifier with the residual wiring (fixed edge weights).
_base_ = './topo_resnet18_cifar_digits.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []
