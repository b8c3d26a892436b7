"""TopoMobileNetV2: mmdet's MobileNetV2 with its stages of inverted
residual blocks rewired."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmdet.models.backbones import MobileNetV2

from mmtopo.models import StageGraph, TopoMobileNetV2
from tests.helpers import (check_norm_state, check_outputs_match,
                           check_same_seed_init, check_stock_checkpoint_loads,
                           check_with_cp_gradients, copy_weights)

LEARNABLE = dict(type='learnable', init='residual')
TOPOLOGIES = [dict(type='residual'), LEARNABLE]
IDS = ['residual', 'learnable']
ALL_OUTPUTS = tuple(range(8))  # layer1..layer7 and conv2


@pytest.mark.parametrize('topology', TOPOLOGIES, ids=IDS)
@pytest.mark.parametrize('widen_factor', [1.0, 0.5])
def test_is_the_stock_mobilenet_v2(widen_factor, topology):
    """From the same seed: the same initial weights under the same names
    (the stages, plain nn.Sequential in the stock class, are not entered by
    mmengine's init recursion, and the stage graphs do not enter it
    either); with them: the same outputs in train and eval mode."""
    kw = dict(widen_factor=widen_factor, out_indices=ALL_OUTPUTS)
    stock, topo = check_same_seed_init(
        lambda: MobileNetV2(**kw),
        lambda: TopoMobileNetV2(topology=topology, **kw))
    check_outputs_match(stock, topo, torch.randn(2, 3, 64, 64))


def test_the_nodes_are_the_inverted_residual_blocks_of_layer1_to_7():
    model = TopoMobileNetV2(topology=LEARNABLE)
    assert model.stage_names == [f'layer{i}' for i in range(1, 8)]
    assert all(isinstance(s, StageGraph) for s in model.stage_graphs)
    assert [len(s) for s in model.stage_graphs] == [1, 2, 3, 4, 3, 3, 1]
    # node 0 changes the shape and has no shortcut; every other node keeps
    # the shape and adds its input
    for stage in model.stage_graphs:
        assert [b.with_res_shortcut
                for b in stage] == ([False] + [True] * (len(stage) - 1))
    # the one-block stages keep their single edge fixed; conv2 is no stage
    assert [s.learnable for s in model.stage_graphs
            ] == [False, True, True, True, True, True, False]
    assert isinstance(model.conv2, ConvModule)
    names = dict(model.named_parameters())
    for name in ('layer4.3.expand_conv.conv.weight', 'layer4.edge_weights',
                 'conv2.conv.weight'):
        assert name in names
    assert 'layer1.edge_weights' in model.state_dict()  # a buffer


def test_stock_checkpoint_loads_with_only_edges_missing(tmp_path):
    check_stock_checkpoint_loads(
        MobileNetV2(), lambda init_cfg: TopoMobileNetV2(
            topology=LEARNABLE, init_cfg=init_cfg), tmp_path)


def test_frozen_stages_and_norm_eval():
    model = TopoMobileNetV2(topology=LEARNABLE, frozen_stages=3)
    model.train()
    assert not model.conv1.conv.weight.requires_grad
    for stage in model.stage_graphs[:3]:
        assert all(not p.requires_grad for p in stage.parameters())
        assert check_norm_state([stage], False)
    assert not model.layer3.edge_weights.requires_grad
    assert model.layer4.edge_weights.requires_grad
    assert check_norm_state(model.stage_graphs[3:], True)
    with pytest.raises(ValueError, match='frozen_stages must be in range'):
        TopoMobileNetV2(frozen_stages=8)
    model = TopoMobileNetV2(norm_eval=True)
    model.train()
    assert check_norm_state(model.modules(), False)


@pytest.mark.parametrize(
    'topology', [dict(type='learnable', init='ones'),
                 dict(type='complete')])
def test_with_cp_gives_the_same_gradients(topology):
    torch.manual_seed(0)
    kw = dict(widen_factor=0.25, out_indices=(2, 6), topology=topology)
    check_with_cp_gradients(
        TopoMobileNetV2(**kw), TopoMobileNetV2(with_cp=True, **kw),
        torch.randn(2, 3, 32, 32))


def test_pruned_export_drops_dead_blocks_and_computes_the_same():
    """layer4 (4 blocks): block 2 loses its inputs, block 3 its output; the
    exported graph removes both, and the pruned model, holding fewer
    parameters, computes what the learned one computes."""
    torch.manual_seed(0)
    kw = dict(widen_factor=0.5, out_indices=(2, 4, 6))
    model = TopoMobileNetV2(
        topology=dict(type='learnable', init='uniform'), **kw)
    with torch.no_grad():
        w = model.layer4.edge_weights
        w[:, 2] = 0.
        w[3, :] = 0.
        w[1, 3] = 0.5  # 3 still has an input, but feeds nothing
    specs = model.export_topology()
    assert len(specs) == 7
    assert specs[3]['removed'] == [2, 3]
    assert not specs[0]['learnable'] and specs[0]['edges'] == [(0, 1)]
    pruned = TopoMobileNetV2(topology=specs, **kw)
    assert [len(list(s)) for s in pruned.stage_graphs] == [1, 2, 3, 2, 3, 3, 1]
    assert pruned.removed_blocks() == {'layer4': [2, 3]}
    assert model.removed_blocks() == {}  # as trained: every block built
    copy_weights_into_pruned(model, pruned)
    x = torch.randn(2, 3, 64, 64)
    for mode in (True, False):
        model.train(mode)
        pruned.train(mode)
        for a, b in zip(model(x), pruned(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def copy_weights_into_pruned(model, pruned):
    state = {
        k: v
        for k, v in model.state_dict().items()
        if k in pruned.state_dict() and 'edge_' not in k
    }
    result = pruned.load_state_dict(state, strict=False)
    assert all('edge_' in k for k in result.missing_keys)
    assert sum(p.numel()
               for p in pruned.parameters()) < sum(p.numel()
                                                   for p in model.parameters())


def test_registered_for_mmdet_and_mmpretrain_and_matches_from_there():
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    torch.manual_seed(0)
    stock = MobileNetV2(widen_factor=0.5)
    for registry in (DET_MODELS, CLS_MODELS):
        model = registry.build(
            dict(
                type='mmtopo.TopoMobileNetV2',
                widen_factor=0.5,
                topology=LEARNABLE))
        assert isinstance(model, TopoMobileNetV2)
        copy_weights(stock, model)
        stock.eval(), model.eval()
        x = torch.randn(1, 3, 32, 32)
        for a, b in zip(stock(x), model(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
