# The digits classifier with instance-aware (dynamic) wiring: the learnable
# graph plus a router per node that gates its in-edges per image.
_base_ = './topo_resnet18_cifar_digits.py'
model = dict(
    backbone=dict(
        topology=dict(_delete_=True, type='dynamic', init='residual')))
