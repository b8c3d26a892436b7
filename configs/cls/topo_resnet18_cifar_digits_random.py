# The digits classifier with the random wiring (fixed edge weights).
_base_ = './topo_resnet18_cifar_digits.py'
model = dict(
    backbone=dict(
        topology=dict(
            _delete_=True, type='random', graph='ws', k=2, p=0.5, seed=0)))
custom_hooks = []
