"""The backbones detection uses today, rewired by the same mechanism:
TopoCSPNeXt (RTMDet), TopoCSPDarknet (YOLOX), TopoSwinTransformer and
TopoConvNeXt. What MMDetection's and MMPretrain's own tests check of the
stock classes (output shapes per ``out_indices``, ``frozen_stages``,
``norm_eval``, ``with_cp``, ``init_cfg``) holds for these, residual and
learnable; the residual wiring is exactly the stock backbone."""
import pytest
import torch
from mmdet.models.backbones import CSPDarknet, CSPNeXt, SwinTransformer
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmpretrain.models.backbones import ConvNeXt
from torch.nn.modules.batchnorm import _BatchNorm

from mmtopo.models import (TopoConvNeXt, TopoCSPDarknet, TopoCSPNeXt,
                           TopoSwinTransformer)
from mmtopo.utils.complexity import BackboneCosts, count_flops
from tests.helpers import (check_norm_state, check_outputs_match,
                           check_same_seed_init, check_stock_checkpoint_loads,
                           check_with_cp_gradients)

# small versions of each: stages of several blocks, a few channels
FAMILIES = {
    'cspnext':
    (CSPNeXt, TopoCSPNeXt, dict(deepen_factor=0.67, widen_factor=0.125)),
    'csp_darknet':
    (CSPDarknet, TopoCSPDarknet, dict(deepen_factor=0.67, widen_factor=0.125)),
    # stochastic depth off: check_outputs_match runs train mode unseeded
    # (test_drop_path_is_drawn_as_in_the_stock_backbone turns it on)
    'swin': (SwinTransformer, TopoSwinTransformer,
             dict(
                 embed_dims=16,
                 depths=(2, 2, 4, 2),
                 num_heads=(1, 2, 2, 4),
                 window_size=4,
                 drop_path_rate=0.0)),
    'convnext': (ConvNeXt, TopoConvNeXt,
                 dict(
                     arch=dict(depths=[2, 2, 3, 2], channels=[8, 16, 32, 64]),
                     out_indices=(0, 1, 2, 3))),
}
LEARNABLE = dict(type='learnable', init='residual')
TOPOLOGIES = [dict(type='residual'), LEARNABLE]
IDS = ['residual', 'learnable']


@pytest.fixture(autouse=True)
def quiet_init():
    """init_weights reports every tensor (Swin warns of no checkpoint)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')
    yield
    logger.setLevel(level)


def x64():
    return torch.randn(2, 3, 64, 64)


@pytest.mark.parametrize('topology', TOPOLOGIES, ids=IDS)
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_residual_and_learnable_are_the_stock_backbone(family, topology):
    """Same seed: the stock tensors under the stock names; the same
    outputs in train and eval mode (stage by stage, ``out_indices``)."""
    stock_cls, topo_cls, kw = FAMILIES[family]
    stock, topo = check_same_seed_init(
        lambda: stock_cls(**kw), lambda: topo_cls(topology=topology, **kw))
    torch.manual_seed(1)
    check_outputs_match(stock, topo, x64())


@pytest.mark.parametrize('family', ['swin', 'convnext'])
def test_drop_path_is_drawn_as_in_the_stock_backbone(family):
    """With ``drop_path_rate``, each block keeps its rate and the random
    draws come in the stock order: seeded train-mode forwards agree."""
    stock_cls, topo_cls, kw = FAMILIES[family]
    kw = dict(kw, drop_path_rate=0.3)
    stock, topo = check_same_seed_init(
        lambda: stock_cls(**kw), lambda: topo_cls(topology=LEARNABLE, **kw))
    stock.train()
    topo.train()
    x = x64()
    torch.manual_seed(3)
    want = stock(x)
    torch.manual_seed(3)
    got = topo(x)
    torch.manual_seed(4)
    other = topo(x)
    for a, b, c in zip(want, got, other):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert any(not torch.allclose(a, c) for a, c in zip(want, other))


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_stages_are_the_sequences_of_blocks(family):
    """The rewired sequences: the CSP layers' blocks, Swin's blocks (its
    patch merging stays after them), ConvNeXt's stages; every topology type
    builds and trains through them, the dynamic one included."""
    stock_cls, topo_cls, kw = FAMILIES[family]
    stock = stock_cls(**kw)
    expected = {
        'cspnext': [2, 4, 4, 2],  # round(0.67 n) of P5's 3/6/6/3
        'csp_darknet': [2, 6, 6, 2],  # of P5's 3/9/9/3
        'swin': [2, 2, 4, 2],
        'convnext': [2, 2, 3, 2],
    }
    for topology in [
            dict(type='complete'),
            dict(type='dynamic'),
            dict(type='random', graph='er', p=0.5),
            dict(type='learnable', init='uniform')
    ]:
        torch.manual_seed(0)
        topo = topo_cls(topology=topology, **kw)
        lengths = [len(s) for s in topo.stage_graphs]
        assert lengths == [
            len(stock.get_submodule(n)) for n in topo.stage_names
        ]
        assert len(lengths) == 4 and min(lengths) >= 2
        topo.train()
        outs = topo(x64())
        sum(o.float().pow(2).mean() for o in outs).backward()
        learnable = [s for s in topo.stage_graphs if s.learnable]
        assert all(s.edge_weights.grad is not None
                   and s.edge_weights.grad.abs().sum() > 0 for s in learnable)
    assert expected[family] == [len(s) for s in topo_cls(**kw).stage_graphs]


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_stock_checkpoints_load_with_only_edges_missing(family, tmp_path):
    stock_cls, topo_cls, kw = FAMILIES[family]
    torch.manual_seed(0)
    stock = stock_cls(**kw)
    stock.init_weights()
    # Swin's own Pretrained loader reads a detector's checkpoint (keys under
    # 'backbone.') and its config's init_cfg.checkpoint
    check_stock_checkpoint_loads(
        stock,
        lambda init_cfg: topo_cls(
            topology=LEARNABLE, init_cfg=ConfigDict(init_cfg), **kw),
        tmp_path,
        key_prefix='backbone.' if family == 'swin' else '')


FROZEN = {
    'cspnext': ('stem', 'stage1', 'stage2'),
    'csp_darknet': ('stem', 'stage1', 'stage2'),
    'swin': ('patch_embed', 'stages.0', 'stages.1', 'norm0', 'norm1'),
    'convnext':
    ('downsample_layers.0', 'stages.0', 'downsample_layers.1', 'stages.1'),
}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_frozen_stages_freeze_exactly_the_stock_parameters(family):
    """Built with ``frozen_stages=2``, the topology backbone freezes the
    parameters the stock one freezes, the frozen stages' edges too, and
    nothing else."""
    stock_cls, topo_cls, kw = FAMILIES[family]
    frozen = dict(frozen_stages=2)
    stock = stock_cls(**frozen, **kw)
    topo = topo_cls(topology=LEARNABLE, **frozen, **kw)
    stock.train()
    topo.train()
    stock_frozen = {
        n
        for n, p in stock.named_parameters() if not p.requires_grad
    }
    topo_frozen = {
        n
        for n, p in topo.named_parameters() if not p.requires_grad
    }
    edges = {n for n in topo_frozen if n.endswith('edge_weights')}
    assert topo_frozen - edges == stock_frozen
    assert stock_frozen and all(
        n.startswith(FROZEN[family]) for n in stock_frozen)
    frozen_stages = [
        n for n in topo.stage_names if n.startswith(FROZEN[family])
    ]
    assert edges == {
        f'{n}.edge_weights'
        for n in frozen_stages if topo.get_submodule(n).learnable
    }
    assert edges  # the frozen stages hold learnable edges


@pytest.mark.parametrize('family', ['cspnext', 'csp_darknet'])
def test_norm_eval_keeps_the_norm_layers_in_eval_mode(family):
    stock_cls, topo_cls, kw = FAMILIES[family]
    topo = topo_cls(topology=LEARNABLE, norm_eval=True, **kw)
    topo.train()
    assert check_norm_state(topo.modules(), False)
    topo = topo_cls(topology=LEARNABLE, norm_eval=False, **kw)
    assert topo.train() is topo  # returns itself, unlike the stock train
    assert check_norm_state(topo.modules(), True)
    assert any(
        isinstance(m, _BatchNorm) for m in topo.stage_graphs[1].modules())


@pytest.mark.parametrize('family', ['swin', 'convnext'])
def test_with_cp_gives_the_same_gradients(family):
    stock_cls, topo_cls, kw = FAMILIES[family]
    kw = dict(kw, drop_path_rate=0.2)
    torch.manual_seed(0)
    check_with_cp_gradients(
        topo_cls(topology=dict(type='learnable', init='uniform'), **kw),
        topo_cls(
            topology=dict(type='learnable', init='uniform'),
            with_cp=True,
            **kw), x64())


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_a_pruned_graph_deploys_with_its_dead_blocks_removed(family):
    """Edges zeroed as a sparsity run would leave them: the exported fixed
    graph computes the same function without the dead blocks, and costs
    what the cost model says."""
    stock_cls, topo_cls, kw = FAMILIES[family]
    torch.manual_seed(0)
    model = topo_cls(topology=dict(type='learnable', init='uniform'), **kw)
    with torch.no_grad():
        for stage in model.stage_graphs:
            stage.edge_weights[:, 1] = 0.0  # block 1 has no input: dead
            stage.edge_weights[0, 2] = 1.0  # block 2 reads block 0
    costs = BackboneCosts(model, (3, 64, 64))
    specs = model.export_topology()
    assert all(spec['removed'] == [1] for spec in specs)
    pruned = topo_cls(topology=specs, **kw)
    own = pruned.state_dict()
    pruned.load_state_dict({
        k: v
        for k, v in model.state_dict().items() if k in own and 'edge_' not in k
    } | {
        k: v
        for k, v in own.items() if 'edge_' in k
    })
    dead = tuple(f'{name}.1.' for name in pruned.stage_names)
    assert not any(k.startswith(dead) for k in own)  # not stored
    model.eval()
    pruned.eval()
    x = x64()
    with torch.no_grad():
        for a, b in zip(model(x), pruned(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert costs.flops(model.topology_graphs()) == pytest.approx(
        count_flops(pruned, (torch.zeros(1, 3, 64, 64), )), rel=1e-9)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_the_sparsity_hook_penalises_their_edges(family):
    """The hook knows stage graphs, not ResNets: one step on these soft-
    thresholds every learnable edge by lr * lambda."""
    from mmengine.logging import MessageHub
    from mmengine.optim import OptimWrapper

    from mmtopo.engine import EdgeSparsityHook
    from tests.test_engine.test_edge_sparsity_hook import fake_runner
    stock_cls, topo_cls, kw = FAMILIES[family]
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        dict(
            backbone=topo_cls(
                topology=dict(type='learnable', init='uniform'), **kw)))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    hook = EdgeSparsityHook(lambda_=0.5, keep_output_scale=False)
    runner = fake_runner(model, wrapper)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    model.train()
    sum(o.float().pow(2).mean() for o in model['backbone'](x64())).backward()
    stages = [s for s in model['backbone'].stage_graphs if s.learnable]
    sgd = [(s.edge_weights - 0.1 * s.edge_weights.grad).detach()
           for s in stages]
    wrapper.step()
    for stage, w in zip(stages, sgd):
        torch.testing.assert_close(
            stage.edge_weights.detach(),
            torch.nn.functional.softshrink(w, 0.05),
            rtol=0,
            atol=1e-7)
    assert hook.edge_stats()['active_edges'] > 0
    assert isinstance(runner.message_hub, MessageHub)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_bad_specs_name_the_field_and_the_value(family):
    _, topo_cls, kw = FAMILIES[family]
    with pytest.raises(
            ValueError,
            match='topology lists 3 stage specs but '
            'num_stages is 4'):
        topo_cls(topology=[dict(type='residual')] * 3, **kw)
    with pytest.raises(ValueError, match=r"init.*'sideways'"):
        topo_cls(topology=dict(type='learnable', init='sideways'), **kw)
    # an edge past the stage's blocks names the stage and its nodes
    with pytest.raises(
            ValueError,
            match=r'topology\[0\] \(custom\): edge \(0, 9\) is out of '
            r'range: nodes are 0\.\.\d'):
        topo_cls(topology=dict(type='custom', edges=[[0, 9]]), **kw)
    with pytest.raises(ValueError, match='unknown field'):
        topo_cls(topology=dict(type='custom', edges=[], num_nodes=5), **kw)
