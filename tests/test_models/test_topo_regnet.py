"""TopoRegNet and TopoRes2Net: the rewiring of mmdet backbones that hold
their stages in ``res_layers``."""
import pytest
import torch
from mmdet.models.backbones import RegNet, Res2Net

from mmtopo.models import StageGraph, TopoRegNet, TopoRes2Net
from tests.helpers import (check_norm_state, check_outputs_match,
                           check_same_seed_init, check_stock_checkpoint_loads,
                           check_with_cp_gradients)

LEARNABLE = dict(type='learnable', init='residual')
TOPOLOGIES = [dict(type='residual'), LEARNABLE]
IDS = ['residual', 'learnable']
# a RegNet small enough to train in a test: stages of 1, 2, 4 and 2 blocks
TINY_ARCH = dict(w0=8, wa=6.0, wm=2.0, group_w=8, depth=9, bot_mul=1.0)


@pytest.mark.parametrize('topology', TOPOLOGIES, ids=IDS)
@pytest.mark.parametrize('arch', sorted(RegNet.arch_settings))
def test_every_regnet_preset_is_the_stock_regnet(arch, topology):
    """With the stock state dict: the same outputs in train and eval
    mode. One-block stages have a single fixed edge; the others learn."""
    torch.manual_seed(0)
    stock = RegNet(arch=arch)
    topo = TopoRegNet(arch=arch, topology=topology)
    assert [len(s) for s in topo.stage_graphs] == stock.stage_blocks
    assert [s.learnable for s in topo.stage_graphs] == [
        topology['type'] == 'learnable' and n > 1 for n in stock.stage_blocks
    ]
    check_outputs_match(stock, topo, torch.randn(2, 3, 32, 32))


# a one-block first stage, the detection config's preset, a one-block last
@pytest.mark.parametrize('topology', TOPOLOGIES, ids=IDS)
@pytest.mark.parametrize('arch',
                         ['regnetx_400mf', 'regnetx_3.2gf', 'regnetx_12gf'])
def test_regnet_init_from_the_same_seed_is_the_stock_init(arch, topology):
    _, topo = check_same_seed_init(
        lambda: RegNet(arch=arch),
        lambda: TopoRegNet(arch=arch, topology=topology))
    # the blocks' zero_init_residual ran through the stage graphs
    assert all(not b.norm3.weight.any() for s in topo.stage_graphs for b in s)


def test_regnet_stock_checkpoint_loads_with_only_edges_missing(tmp_path):
    check_stock_checkpoint_loads(
        RegNet(arch='regnetx_3.2gf'), lambda init_cfg: TopoRegNet(
            arch='regnetx_3.2gf', topology=LEARNABLE, init_cfg=init_cfg),
        tmp_path)


def test_regnet_stages_hold_the_x_blocks_under_mmdet_names():
    model = TopoRegNet(arch='regnetx_3.2gf', topology=LEARNABLE)
    assert model.stage_names == ['layer1', 'layer2', 'layer3', 'layer4']
    assert all(isinstance(s, StageGraph) for s in model.stage_graphs)
    names = dict(model.named_parameters())
    for name in ('layer1.0.downsample.0.weight', 'layer3.14.conv2.weight',
                 'layer2.edge_weights'):
        assert name in names
    assert [len(s) for s in model.stage_graphs] == [2, 6, 15, 2]


SMALL_RES2NET = dict(depth=50, base_channels=16, base_width=8)


@pytest.mark.parametrize(
    'make', [
        lambda **kw: TopoRegNet(arch=TINY_ARCH, **kw),
        lambda **kw: TopoRes2Net(**SMALL_RES2NET, **kw)
    ],
    ids=['regnet', 'res2net'])
def test_frozen_stages_and_norm_eval(make):
    model = make(topology=LEARNABLE, frozen_stages=2, norm_eval=False)
    model.train()
    # the stem (RegNet's conv1 and bn1, Res2Net's deep stem) and stages 1-2
    # with their edges are frozen, their norms in eval mode
    stem = [
        m for name, m in model.named_children() if not name.startswith('layer')
    ]
    assert stem and all(not p.requires_grad for m in stem
                        for p in m.parameters())
    assert check_norm_state(stem, False)
    for stage in model.stage_graphs[:2]:
        assert all(not p.requires_grad for p in stage.parameters())
        assert check_norm_state([stage], False)
    assert not model.layer2.edge_weights.requires_grad
    assert model.layer3.edge_weights.requires_grad
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert check_norm_state([model.layer3, model.layer4], True)
    model = make(norm_eval=True)
    model.train()
    assert check_norm_state(model.modules(), False)


@pytest.mark.parametrize(
    'topology', [dict(type='learnable', init='ones'),
                 dict(type='complete')])
def test_regnet_with_cp_gives_the_same_gradients(topology):
    torch.manual_seed(0)
    check_with_cp_gradients(
        TopoRegNet(arch=TINY_ARCH, topology=topology),
        TopoRegNet(arch=TINY_ARCH, topology=topology, with_cp=True),
        torch.randn(2, 3, 32, 32))


RES2NET = dict(depth=50, scales=4, base_width=26)


@pytest.mark.parametrize('topology', TOPOLOGIES, ids=IDS)
def test_res2net_is_the_stock_res2net(topology):
    stock, topo = check_same_seed_init(
        lambda: Res2Net(**RES2NET),
        lambda: TopoRes2Net(topology=topology, **RES2NET))
    assert [len(s) for s in topo.stage_graphs] == [3, 4, 6, 3]
    # node 0 is the block that strides and pools its split ('stage')
    assert [[b.stage_type for b in s][:2]
            for s in topo.stage_graphs] == [['stage', 'normal']] * 4
    check_outputs_match(stock, topo, torch.randn(2, 3, 64, 64))


def test_res2net_stock_checkpoint_loads_and_with_cp(tmp_path):
    check_stock_checkpoint_loads(
        Res2Net(**RES2NET), lambda init_cfg: TopoRes2Net(
            topology=LEARNABLE, init_cfg=init_cfg, **RES2NET), tmp_path)
    torch.manual_seed(0)
    ones = dict(type='learnable', init='ones')
    check_with_cp_gradients(
        TopoRes2Net(topology=ones, **SMALL_RES2NET),
        TopoRes2Net(topology=ones, with_cp=True, **SMALL_RES2NET),
        torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize('type_name', ['TopoRegNet', 'mmtopo.TopoRes2Net'])
def test_registered_for_mmdet_and_mmpretrain(type_name):
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    args = (
        dict(arch='regnetx_400mf') if 'RegNet' in type_name else dict(
            depth=50))
    for registry in (DET_MODELS, CLS_MODELS):
        model = registry.build(dict(type=type_name, **args))
        assert type(model).__name__ == type_name.split('.')[-1]
