"""FLOPs count the aggregation: one multiply-add per edge and output
element, nothing for an input that is passed through."""
import pytest
import torch
from mmdet.models.backbones import ResNet

from mmtopo.models import TopoResNet
from mmtopo.utils.complexity import count_flops


@pytest.mark.parametrize('depth,topology,edges_per_stage', [
    (18, dict(type='residual'), [0, 0, 0, 0]),
    # a 2-block stage is a 3-node DAG: edges 0->1, 0->2, 1->2
    (18, dict(type='learnable'), [3, 3, 3, 3]),
    # fixed 1/in-degree: node 1's single input of weight 1 is passed through
    (18, dict(type='complete'), [2, 2, 2, 2]),
    (50, dict(type='learnable', init='uniform'), [6, 10, 21, 6]),
])
def test_aggregation_flops_are_counted(depth, topology, edges_per_stage):
    x = torch.randn(1, 3, 64, 64)
    stock = count_flops(ResNet(depth=depth), (x, ))
    model = TopoResNet(depth=depth, topology=topology)
    with torch.no_grad():
        numels = [f.numel() for f in model.eval()(x)]
    expected = sum(n * e for n, e in zip(numels, edges_per_stage))
    assert count_flops(model, (x, )) - stock == expected
