"""TopoLearningRateDecayOptimizerConstructor: mmdet's layer-wise decay
groups for every stock parameter, one group of its own for the wiring."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.models import ConvNeXt

from mmtopo.models import TopoConvNeXt

ARCH = dict(depths=[2, 2, 3, 2], channels=[8, 16, 32, 64])


class Detector(torch.nn.Module):
    """What mmdet's rule reads: a ``backbone`` and parameters beside it."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Conv2d(64, 4, 1)


def detector(topology=None, **kwargs):
    torch.manual_seed(0)
    if topology is None:
        return Detector(ConvNeXt(arch=ARCH, **kwargs))
    return Detector(TopoConvNeXt(arch=ARCH, topology=topology, **kwargs))


def groups(model, constructor):
    cfg = ConfigDict(
        type='OptimWrapper',
        constructor=constructor,
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        paramwise_cfg=dict(
            decay_rate=0.9, decay_type='layer_wise', num_layers=6))
    with DefaultScope.overwrite_default_scope('mmdet'):  # mmdet's rule
        built = build_optim_wrapper(model, cfg).optimizer.param_groups
    return {
        g['group_name']: (g['param_names'], g['lr'], g['weight_decay'])
        for g in built
    }


LEARNABLE = dict(type='learnable', init='residual')


def test_stock_groups_are_mmdets_and_the_edges_have_their_own():
    stock = groups(detector(), 'LearningRateDecayOptimizerConstructor')
    ours = groups(
        detector(LEARNABLE), 'TopoLearningRateDecayOptimizerConstructor')
    wiring = ours.pop('topology')
    assert ours == stock
    assert wiring == ([f'backbone.stages.{i}.edge_weights'
                       for i in range(4)], 1e-4, 0.)
    # the decay reaches the blocks: the first stage's lr is scaled down
    assert stock['layer_1_decay'][1] == pytest.approx(1e-4 * 0.9**6)


def test_mmdets_own_rule_cannot_place_the_edges():
    with pytest.raises(ValueError, match='edge_weights'):
        groups(detector(LEARNABLE), 'LearningRateDecayOptimizerConstructor')


def test_routers_join_the_edges_and_frozen_edges_stay_out_and_frozen():
    model = detector(dict(type='dynamic', init='residual'), frozen_stages=1)
    names, lr, decay = groups(
        model, 'TopoLearningRateDecayOptimizerConstructor')['topology']
    stages = model.backbone.stage_graphs
    assert not stages[0].edge_weights.requires_grad  # frozen, and still so
    assert all(s.edge_weights.requires_grad for s in stages[1:])
    expected = [
        name for name, p in model.named_parameters()
        if ('edge_weights' in name or '.routers.' in name) and p.requires_grad
    ]
    assert sorted(names) == sorted(expected)
    assert any('.routers.' in n for n in names)
    assert not any(n.startswith('backbone.stages.0.') for n in names)
    assert (lr, decay) == (1e-4, 0.)
