# TopoResNet-50 with instance-aware (dynamic) wiring on ImageNet-1k
# (mmpretrain recipe): a router per node gates its in-edges per image, on top
# of the learned static edges that the sparsity hook prunes.
_base_ = './topo_resnet50_8xb32_in1k.py'

model = dict(
    backbone=dict(
        topology=dict(
            _delete_=True,
            type='dynamic',
            init='residual',
            threshold=0.0,
            router=dict(type='EdgeRouter', reduction=16))))
