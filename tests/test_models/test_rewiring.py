"""The one rewiring mechanism, apart from any backbone family."""
import copy
from unittest import mock

import pytest
import torch
from mmdet.models.backbones.resnet import BasicBlock
from mmdet.models.layers import ResLayer
from torch import nn

from mmtopo.models import StageGraph, build_stage_topology, rewire_stages


class Block(nn.Module):
    """A shape-keeping residual block (after the first, which may not)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.shortcut = cin == cout and stride == 1

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return x + y if self.shortcut else y


class PlainNet(nn.Module):
    """Two stages held as plain nn.Sequential, as no mmdet class holds
    them: the mechanism asks only for sequences of blocks."""

    def __init__(self):
        super().__init__()
        self.s1 = nn.Sequential(Block(3, 8, 2), Block(8, 8), Block(8, 8))
        self.s2 = nn.Sequential(Block(8, 16, 2), Block(16, 16))

    def forward(self, x):
        return self.s2(self.s1(x))


def test_residual_rewiring_of_any_sequence_of_blocks_is_the_same_network():
    torch.manual_seed(0)
    stock = PlainNet()
    for topology in (dict(type='residual'),
                     dict(type='learnable', init='residual')):
        topo = copy.deepcopy(stock)
        rewire_stages(topo, ['s1', 's2'], topology, 'error')
        assert [type(topo.s1), len(topo.s1),
                len(topo.s2)] == [StageGraph, 3, 2]
        x = torch.randn(2, 3, 16, 16)
        torch.testing.assert_close(topo(x), stock(x), rtol=0, atol=0)


def test_learnable_rewiring_trains_the_edges_of_any_backbone():
    torch.manual_seed(0)
    net = PlainNet()
    rewire_stages(
        net, ['s1', 's2'],
        [dict(type='learnable', init='uniform'),
         dict(type='complete')], 'error')
    assert net.s1.learnable and not net.s2.learnable
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    grad = net.s1.edge_weights.grad
    assert grad[net.s1.edge_mask].abs().min() > 0
    assert not grad[~net.s1.edge_mask].any()
    with pytest.raises(
            ValueError, match='lists 1 stage specs but '
            'num_stages is 2'):
        rewire_stages(PlainNet(), ['s1', 's2'], [dict(type='residual')],
                      'error')


def test_init_recursion_is_entered_where_the_stock_container_entered_it():
    """mmdet's ResLayer is a BaseModule: init_weights reaches its blocks'
    init_cfg (zero_init_residual). A plain nn.Sequential is not: the blocks
    keep their weights, as in the stock backbone."""

    def zero_init_block():
        return BasicBlock(
            8,
            8,
            init_cfg=dict(type='Constant', val=0, override=dict(name='norm2')))

    holder = nn.Module()
    holder.res = ResLayer(BasicBlock, 8, 8, 2)
    holder.plain = nn.Sequential(zero_init_block(), zero_init_block())
    holder.res[1].init_cfg = zero_init_block().init_cfg
    rewire_stages(holder, ['res', 'plain'], dict(type='residual'), 'error')
    assert holder.res.init_blocks and not holder.plain.init_blocks
    holder.res.init_weights()
    holder.plain.init_weights()
    assert not holder.res[1].norm2.weight.any()  # its init_cfg ran
    assert (holder.plain[1].norm2.weight == 1).all()  # untouched
    assert holder.plain.is_init
    with pytest.raises(ValueError, match='init_cfg would be ignored'):
        StageGraph([zero_init_block()],
                   build_stage_topology(dict(type='residual'), 1, 0),
                   init_blocks=False,
                   init_cfg=dict(type='Constant', val=0, layer='Conv2d'))


@pytest.mark.parametrize('spec', [
    dict(type='learnable'),
    dict(type='learnable', init='uniform'),
    dict(type='custom', edges=[(0, 1)], learnable=True)
])
def test_a_one_block_stage_keeps_its_single_edge_fixed_and_says_so(spec):
    with mock.patch('mmtopo.models.topology.print_log') as log:
        topo = build_stage_topology(spec, 1, 3)
    assert not topo.learnable
    assert topo.mask.tolist() == [[False, True], [False, False]]
    assert topo.weights.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert log.call_args.args[0] == (
        'topology[3]: a stage of one block has a single edge, 0 -> 1; it '
        'stays fixed at 1 (not learnable)')
    if spec['type'] == 'learnable':  # two blocks: a graph to learn
        with mock.patch('mmtopo.models.topology.print_log') as log:
            assert build_stage_topology(spec, 2, 3).learnable
        log.assert_not_called()
