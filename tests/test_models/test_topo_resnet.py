import logging
from unittest import mock

import pytest
import torch
from mmdet.models.backbones import ResNet, ResNetV1d, ResNeXt
from mmengine.registry import MODELS as ROOT_MODELS

from mmtopo.models import (TopoResNet, TopoResNetCIFAR, TopoResNetV1d,
                           TopoResNeXt)
from mmtopo.models.layers import StageGraph
from tests.helpers import (check_norm_state, check_outputs_match,
                           check_same_seed_init, check_stock_checkpoint_loads,
                           check_with_cp_gradients)

LEARNABLE = dict(type='learnable', init='residual')


@pytest.mark.parametrize('norm_eval', [None, False])
@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('topology', [dict(type='residual'), LEARNABLE])
def test_matches_mmdet_resnet(depth, topology, norm_eval):
    """Built with the same arguments (the defaults, or norm layers that
    train), the same outputs in train and eval mode."""
    kw = {} if norm_eval is None else dict(norm_eval=norm_eval)
    torch.manual_seed(0)
    stock = ResNet(depth, **kw)
    topo = TopoResNet(depth=depth, topology=topology, **kw)
    check_outputs_match(stock, topo, torch.randn(2, 3, 64, 64))


def test_v1d_matches_mmdet_resnet_v1d():
    torch.manual_seed(0)
    check_outputs_match(
        ResNetV1d(depth=18), TopoResNetV1d(depth=18, topology=LEARNABLE),
        torch.randn(2, 3, 64, 64))


def test_resnext_matches_mmdet_resnext():
    torch.manual_seed(0)
    kw = dict(depth=50, groups=4, base_width=4, base_channels=16)
    check_outputs_match(
        ResNeXt(**kw), TopoResNeXt(topology=LEARNABLE, **kw),
        torch.randn(1, 3, 64, 64))


STOCK_AND_TOPO = {
    'resnet18':
    (lambda: ResNet(18), lambda t: TopoResNet(depth=18, topology=t)),
    'resnet50':
    (lambda: ResNet(50), lambda t: TopoResNet(depth=50, topology=t)),
    'resnetv1d50': (lambda: ResNetV1d(depth=50),
                    lambda t: TopoResNetV1d(depth=50, topology=t)),
    'resnext50':
    (lambda: ResNeXt(depth=50, groups=32, base_width=4),
     lambda t: TopoResNeXt(depth=50, groups=32, base_width=4, topology=t)),
    'mmpretrain_resnet18': (lambda: _pretrain('ResNet')(depth=18),
                            lambda t: TopoResNet(depth=18, topology=t)),
    'mmpretrain_resnet50': (lambda: _pretrain('ResNet')(depth=50),
                            lambda t: TopoResNet(depth=50, topology=t)),
    'mmpretrain_resnet18_cifar':
    (lambda: _pretrain('ResNet_CIFAR')
     (depth=18), lambda t: TopoResNetCIFAR(depth=18, topology=t)),
}


def _pretrain(name):
    import mmpretrain.models
    return getattr(mmpretrain.models, name)


@pytest.mark.parametrize(
    'topology', [dict(type='residual'), LEARNABLE],
    ids=['residual', 'learnable'])
@pytest.mark.parametrize('arch', sorted(STOCK_AND_TOPO))
def test_init_weights_from_the_same_seed_is_the_stock_init(arch, topology):
    """From scratch too: mmengine's init reaches the blocks through the stage
    graph, so zero_init_residual zeroes the last norm of every block."""
    make_stock, make_topo = STOCK_AND_TOPO[arch]
    _, topo = check_same_seed_init(make_stock, lambda: make_topo(topology))
    # the zero init did happen, in every block (mmdet's ResNeXt has its own
    # Bottleneck class, which its zero_init_residual does not match: there
    # the stock backbone keeps them at 1, and so do we)
    last_norm = 'norm2' if '18' in arch else 'norm3'
    zeroed = arch != 'resnext50'
    for stage in topo.stage_graphs:
        for block in stage:
            weight = getattr(block, last_norm).weight
            assert not weight.any() if zeroed else (weight == 1).all()
    assert topo.layer1[0].conv1.weight.std() > 0  # and Kaiming did too


def test_stock_checkpoint_loads_through_init_cfg(tmp_path):
    check_stock_checkpoint_loads(
        ResNet(50), lambda init_cfg: TopoResNet(
            depth=50, topology=LEARNABLE, init_cfg=init_cfg), tmp_path)


@pytest.mark.parametrize('topology', [
    dict(type='residual'),
    dict(type='complete'), LEARNABLE,
    dict(type='learnable', init='uniform'),
    dict(type='random', graph='ws', k=2, p=0.5, seed=3),
    dict(type='random', graph='ba', m=1)
])
@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (3, ), (1, 2)])
def test_shapes_and_strides(topology, out_indices):
    model = TopoResNet(depth=18, topology=topology, out_indices=out_indices)
    outs = model(torch.randn(1, 3, 64, 96))
    assert isinstance(outs, tuple)
    channels = (64, 128, 256, 512)
    strides = (4, 8, 16, 32)
    assert [o.shape for o in outs] == [(1, channels[i], 64 // strides[i],
                                        96 // strides[i]) for i in out_indices]
    for stage in model.stage_graphs:
        mask = stage.edge_mask
        assert not mask.tril().any()


def test_stages_are_stage_graphs_with_mmdet_names():
    model = TopoResNet(depth=50, topology=LEARNABLE)
    assert [len(s) for s in model.stage_graphs] == [3, 4, 6, 3]
    assert all(isinstance(s, StageGraph) for s in model.stage_graphs)
    names = dict(model.named_parameters())
    assert 'layer1.0.conv1.weight' in names
    assert 'layer3.5.conv3.weight' in names
    assert 'layer1.0.downsample.0.weight' in names
    assert 'layer2.edge_weights' in names
    assert 'layer2.edge_mask' in model.state_dict()
    # fixed topologies keep their weights as a buffer, not a parameter
    fixed = TopoResNet(depth=18, topology=dict(type='complete'))
    assert not any('edge' in n for n, _ in fixed.named_parameters())
    assert 'layer1.edge_weights' in fixed.state_dict()


def test_random_graph_is_saved_and_never_resampled():
    spec = dict(type='random', graph='er', p=0.4, seed=5)
    model = TopoResNet(depth=34, topology=spec)
    state = model.state_dict()
    same = TopoResNet(depth=34, topology=spec)
    same.load_state_dict(state)
    for a, b in zip(model.stage_graphs, same.stage_graphs):
        assert torch.equal(a.edge_mask, b.edge_mask)
    other = TopoResNet(depth=34, topology=dict(spec, seed=6))
    with pytest.raises(
            ValueError,
            match="checkpoint graph does not fit the "
            "model at 'layer1.edge_mask'"):
        other.load_state_dict(state)


def test_checkpoint_of_other_depth_is_refused():
    state = TopoResNet(depth=18, topology=LEARNABLE).state_dict()
    model = TopoResNet(depth=34, topology=LEARNABLE)
    with pytest.raises(ValueError, match='edge_mask'):
        model.load_state_dict(state, strict=False)


def test_graph_mismatch_adapt_loads_a_learned_checkpoint_into_its_pruning():
    """Fine-tuning a pruned graph from the learnable checkpoint on purpose:
    with graph_mismatch='adapt' the pruned model gets the checkpoint's
    weights on the edges it keeps, computes what the exported pruned model
    computes, and the log names every edge and block dropped. Without it,
    the same load fails naming the stage and the option."""
    torch.manual_seed(0)
    learned = TopoResNet(
        depth=34,
        base_channels=8,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        for stage in learned.stage_graphs:
            stage.edge_weights.mul_(torch.rand_like(stage.edge_weights))
        learned.layer2.edge_weights[:, 2] = 0.  # block 2 dies
    specs = learned.export_topology(threshold=0.05)
    assert specs[1]['removed'] == [2]
    state = learned.state_dict()
    exported = TopoResNet(
        depth=34, base_channels=8, stem_channels=8, topology=specs)
    with pytest.raises(
            ValueError, match=r"at 'layer1.edge_mask'.*"
            r"graph_mismatch='adapt'"):
        exported.load_state_dict(state, strict=False)
    exported.load_state_dict(
        {
            k: v
            for k, v in state.items() if 'edge_' not in k
        }, strict=False)
    adapted = TopoResNet(
        depth=34,
        base_channels=8,
        stem_channels=8,
        topology=specs,
        graph_mismatch='adapt')
    with mock.patch('mmtopo.models.layers.stage_graph.print_log') as log:
        result = adapted.load_state_dict(state, strict=False)
    assert not result.missing_keys
    removed = tuple(f'layer{s + 1}.{k}.' for s, spec in enumerate(specs)
                    for k in spec.get('removed', []))
    assert 'layer2.2.' in removed
    assert sorted(result.unexpected_keys) == sorted(
        k for k in state if k.startswith(removed))
    x = torch.randn(2, 3, 32, 32)
    adapted.eval(), exported.eval()
    for a, b in zip(adapted(x), exported(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    dropped = [(i, j) for i, j in learned.layer2.edge_mask.nonzero().tolist()
               if (i, j) not in specs[1]['edges']]
    report = next(c.args[0] for c in log.call_args_list
                  if 'at layer2:' in c.args[0])
    assert log.call_args.kwargs['level'] == logging.WARNING
    for i, j in dropped:
        assert f'({i}, {j}, ' in report
    assert 'removed blocks whose checkpoint weights are unused [2]' in report
    with pytest.raises(ValueError, match='graph_mismatch must be one of'):
        TopoResNet(depth=18, graph_mismatch='ignore')


def test_graph_mismatch_adapt_reports_exactly_what_changed():
    """Checkpoint layer1 edges 0->1, 1->2, 0->2 (0.123456789), 2->3; the
    model's 0->1, 1->2, 2->3, 1->3. 0->2 is dropped (reported to 6
    decimals), 1->3 is not in the checkpoint (kept as built, 0.5), the
    rest take the checkpoint's weights, nothing lands off the mask."""
    theirs = TopoResNet(
        depth=34,
        base_channels=4,
        stem_channels=4,
        topology=[
            dict(
                type='custom',
                edges=[(0, 1), (1, 2), (0, 2), (2, 3)],
                weights=[0.7, -0.3, 0.123456789, 1.5],
                learnable=True), LEARNABLE, LEARNABLE, LEARNABLE
        ])
    ours = TopoResNet(
        depth=34,
        base_channels=4,
        stem_channels=4,
        topology=[
            dict(
                type='custom',
                edges=[(0, 1), (1, 2), (2, 3), (1, 3)],
                weights=[1., 1., 1., 0.5]), LEARNABLE, LEARNABLE, LEARNABLE
        ],
        graph_mismatch='adapt')
    with mock.patch('mmtopo.models.layers.stage_graph.print_log') as log:
        ours.load_state_dict(theirs.state_dict())
    (report, ), kwargs = log.call_args
    assert report == (
        "graph_mismatch='adapt' at layer1: dropped edges (i, j, weight) "
        '[(0, 2, 0.123457)], edges not in the checkpoint (kept as built) '
        '[(1, 3)], removed blocks whose checkpoint weights are unused []')
    assert kwargs == dict(logger='current', level=logging.WARNING)
    assert log.call_count == 1  # the other stages match
    expected = torch.zeros(4, 4)
    expected[0, 1], expected[1, 2], expected[2, 3] = 0.7, -0.3, 1.5
    expected[1, 3] = 0.5
    assert torch.equal(ours.layer1.edge_weights, expected)
    assert torch.equal(ours.layer1.edge_mask, expected != 0)
    other = TopoResNet(depth=18, topology=LEARNABLE).state_dict()
    with pytest.raises(
            ValueError,
            match=r'checkpoint graph at layer1\.'
            r'edge_mask has 3 nodes .* a stage of another '
            r'length cannot be adapted to this one of 3 blocks'):
        ours.load_state_dict(other, strict=False)


def test_learnable_edges_get_gradients_and_masked_edges_never_change():
    torch.manual_seed(0)
    model = TopoResNet(
        depth=18,
        topology=[
            LEARNABLE,
            dict(
                type='custom', edges=[(0, 2), (0, 1), (1, 2)], learnable=True),
            LEARNABLE, LEARNABLE
        ])
    optim = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    x = torch.randn(2, 3, 32, 32)
    before = model.layer2.edge_weights.detach().clone()
    for _ in range(3):
        optim.zero_grad()
        sum(o.mean() for o in model(x)).backward()
        for stage in model.stage_graphs:
            grad = stage.edge_weights.grad
            assert grad is not None
            assert (grad[~stage.edge_mask] == 0).all()
            assert grad[stage.edge_mask].abs().sum() > 0
        optim.step()
    for stage in model.stage_graphs:
        assert (stage.edge_weights[~stage.edge_mask] == 0).all()
    assert not torch.equal(before, model.layer2.edge_weights)


def test_frozen_stages_freeze_edges_too():
    model = TopoResNet(
        depth=18, topology=LEARNABLE, frozen_stages=2, norm_eval=False)
    model.train()
    assert not model.conv1.weight.requires_grad
    for stage in model.stage_graphs[:2]:
        assert not stage.edge_weights.requires_grad
        assert all(not p.requires_grad for p in stage.parameters())
        assert check_norm_state([stage], False)
    assert model.layer3.edge_weights.requires_grad
    assert check_norm_state([model.layer3, model.layer4], True)


def test_norm_eval_defaults_to_the_stock_class_it_extends():
    """mmdet's ResNet defaults to norm_eval=True, and so does TopoResNet:
    a config that swaps the type keeps its norm layers' behaviour.
    Classification recipes (mmpretrain's default) say False."""
    model = TopoResNet(depth=18)
    assert model.norm_eval is ResNet(depth=18).norm_eval is True
    model.train()
    assert check_norm_state(model.modules(), False)
    model = TopoResNet(depth=18, norm_eval=False)
    model.train()
    assert check_norm_state(model.modules(), True)


@pytest.mark.parametrize(
    'topology', [dict(type='learnable', init='ones'),
                 dict(type='complete')])
def test_with_cp_gives_same_gradients(topology):
    torch.manual_seed(0)
    check_with_cp_gradients(
        TopoResNet(depth=18, topology=topology),
        TopoResNet(depth=18, topology=topology, with_cp=True),
        torch.randn(2, 3, 32, 32))


def test_export_topology_reproduces_the_pruned_model():
    torch.manual_seed(0)
    model = TopoResNet(
        depth=34, topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():  # prune: zero a few edges, keep nodes connected
        model.layer1.edge_weights[0, 2] = 0
        model.layer3.edge_weights[1, 2] = 0
        model.layer3.edge_weights[0, 5] = 1e-4
    specs = model.export_topology(threshold=1e-3)
    assert len(specs) == 4 and all(s['type'] == 'custom' for s in specs)
    assert (0, 2) not in specs[0]['edges']
    assert (1, 2) not in specs[2]['edges'] and (0, 5) not in specs[2]['edges']
    assert len(specs[2]['edges']) == 21 - 2
    with torch.no_grad():
        model.layer3.edge_weights[0, 5] = 0
    pruned = TopoResNet(depth=34, topology=specs)
    blocks = {k: v for k, v in model.state_dict().items() if 'edge_' not in k}
    copy_weights_only(pruned, blocks)
    model.eval()
    pruned.eval()
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(model(x), pruned(x)):
        torch.testing.assert_close(b, a)
    with pytest.raises(ValueError, match='threshold must be >= 0'):
        model.export_topology(threshold=-1)


def copy_weights_only(model, blocks):
    result = model.load_state_dict(blocks, strict=False)
    assert all('edge_' in k for k in result.missing_keys)


def test_bad_topology_arguments():
    with pytest.raises(KeyError, match="topology.type 'dag'"):
        TopoResNet(depth=18, topology=dict(type='dag'))
    with pytest.raises(
            ValueError, match='lists 2 stage specs but '
            'num_stages is 4'):
        TopoResNet(depth=18, topology=[LEARNABLE, LEARNABLE])
    with pytest.raises(
            ValueError, match=r'topology\[1\].*node 1 has no '
            'output'):
        TopoResNet(
            depth=18,
            num_stages=2,
            out_indices=(0, 1),
            strides=(1, 2),
            dilations=(1, 1),
            topology=[LEARNABLE,
                      dict(type='custom', edges=[(0, 1), (0, 2)])])


@pytest.mark.parametrize('type_name', ['TopoResNet', 'mmtopo.TopoResNet'])
def test_registered_for_mmdet_and_root(type_name):
    from mmdet.registry import MODELS as DET_MODELS
    for registry in (DET_MODELS, ROOT_MODELS):
        model = registry.build(
            dict(type=type_name, depth=18, topology=LEARNABLE))
        assert isinstance(model, TopoResNet)


def test_matches_mmpretrain_resnet_and_builds_from_its_registry():
    from mmpretrain.models import ResNet as PretrainResNet
    from mmpretrain.registry import MODELS as CLS_MODELS
    torch.manual_seed(0)
    stock = PretrainResNet(depth=18, out_indices=(0, 1, 2, 3))
    topo = CLS_MODELS.build(
        dict(type='TopoResNet', depth=18, norm_eval=False, topology=LEARNABLE))
    assert isinstance(topo, TopoResNet)
    check_outputs_match(stock, topo, torch.randn(2, 3, 64, 64))


def test_cifar_variant_keeps_full_resolution_stem():
    from mmtopo.models import TopoResNetCIFAR
    model = TopoResNetCIFAR(depth=18, base_channels=16, topology=LEARNABLE)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    outs = model(torch.randn(2, 3, 32, 32))
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4]
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]
    with pytest.raises(ValueError, match='deep_stem must be False'):
        TopoResNetCIFAR(depth=18, deep_stem=True)


def test_export_at_the_default_threshold_drops_exact_zeros_only():
    model = TopoResNet(
        depth=18, topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        model.layer2.edge_weights[0, 2] = 0.0
        model.layer2.edge_weights[1, 2] = 1e-30  # tiny, but not pruned
        model.layer3.edge_weights[0, 1] = -0.25
    specs = model.export_topology()
    assert specs[1]['edges'] == [(0, 1), (1, 2)]
    assert specs[1]['weights'][0] == 1.0
    assert specs[1]['weights'][1] == pytest.approx(1e-30, rel=1e-6)
    assert specs[2]['weights'][0] == -0.25
    assert all(s['learnable'] for s in specs)


@pytest.mark.parametrize('topology', [
    dict(type='complete'),
    dict(type='residual'),
    dict(type='random', graph='er', p=0.6, seed=2),
    dict(type='learnable', init='uniform')
])
def test_export_round_trips_weights_and_learnable_flag(topology):
    model = TopoResNet(depth=34, topology=topology)
    rebuilt = TopoResNet(depth=34, topology=model.export_topology())
    for a, b in zip(model.stage_graphs, rebuilt.stage_graphs):
        assert torch.equal(a.edge_mask, b.edge_mask)
        assert torch.equal(a.edge_weights, b.edge_weights)
        assert a.learnable == b.learnable


def test_export_of_a_node_whose_only_out_edge_is_pruned_builds():
    """The case that used to export [(0, 1), (0, 2)] and fail to build:
    node 1 can no longer reach the output, so it is removed."""
    model = TopoResNet(depth=18, topology=dict(type='learnable'))
    with torch.no_grad():
        model.layer1.edge_weights[0, 2] = 0.5
        model.layer1.edge_weights[1, 2] = 0.0
    spec = model.export_topology()[0]
    assert spec['edges'] == [(0, 2)] and spec['removed'] == [1]
    pruned = TopoResNet(depth=18, topology=model.export_topology())
    assert [len(list(s)) for s in pruned.stage_graphs] == [1, 2, 2, 2]
    assert not any(k.startswith('layer1.1.') for k in pruned.state_dict())


def _pruned_model():
    """TopoResNet-34 with, in layer3 (6 blocks): node 2 without an active
    input, node 4 without an active output, node 5 fed only by node 2;
    layer2 kept to a single path; layer1 and layer4 dense."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=34,
        base_channels=8,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        for stage in model.stage_graphs:  # unequal weights everywhere
            stage.edge_weights.mul_(1 +
                                    torch.rand(stage.edge_weights.shape)).mul_(
                                        stage.edge_mask)
        w = model.layer3.edge_weights
        w[:, 2] = 0.0
        w[4, :] = 0.0
        w[:, 5] = 0.0
        w[2, 5] = 0.9  # 5's only input comes from the removed node 2
        w[0, 6] = 1e-4  # below the threshold used below
        w2 = model.layer2.edge_weights
        w2.zero_()
        for i in range(4):
            w2[i, i + 1] = 0.5 + 0.1 * i  # one path: the chain
    return model


def test_pruned_export_computes_the_same_function_with_fewer_blocks():
    model = _pruned_model()
    specs = model.export_topology(threshold=1e-3)
    assert specs[2]['removed'] == [2, 4, 5]
    assert (0, 6) not in specs[2]['edges']
    assert specs[1]['edges'] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert 'removed' not in specs[1] and 'removed' not in specs[0]
    pruned = TopoResNet(
        depth=34, base_channels=8, stem_channels=8, topology=specs)
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith(('layer3.2.', 'layer3.4.',
                             'layer3.5.')) and 'edge_' not in k
    }
    result = pruned.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all('edge_' in k for k in result.missing_keys)
    assert sum(p.numel()
               for p in pruned.parameters()) < sum(p.numel()
                                                   for p in model.parameters())
    with torch.no_grad():
        model.layer3.edge_weights[0, 6] = 0.0  # what pruning cut
    x = torch.randn(2, 3, 32, 32)
    for mode in (True, False):
        model.train(mode)
        pruned.train(mode)
        for a, b in zip(model(x), pruned(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_a_threshold_that_cuts_a_stage_names_it_and_the_largest_safe_one():
    model = _pruned_model()
    with torch.no_grad():  # every other stage: live edges of at least 1
        for stage in (model.layer1, model.layer3, model.layer4):
            w = stage.edge_weights
            w[w != 0] = 1.0 + w[w != 0].abs()
    # layer2 is the chain 0.5, 0.6, 0.7, 0.8: its widest path is 0.5
    with pytest.raises(
            ValueError,
            match=r'layer2: pruning at threshold 0\.6'
            r' cuts every path .* thresholds below 0\.5 keep it'):
        model.export_topology(threshold=0.6)
    specs = model.export_topology(threshold=0.49)
    assert specs[1]['edges'] == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_a_diverged_graph_is_refused_naming_its_non_finite_edges():
    model = _pruned_model()
    with torch.no_grad():
        model.layer3.edge_weights[0, 1] = float('nan')
    # not "cuts every path" (a NaN compares false with every threshold)
    with pytest.raises(
            ValueError,
            match=r"layer3: edge weights \(i, j, "
            r"weight\) \[\(0, 1, nan\)\] are not finite \(the run "
            r'diverged\)'):
        model.export_topology()


@pytest.mark.parametrize('spec,words', [
    (dict(type='custom', edges=[(0, 1), (1, 3), (0, 3)],
          removed=[2, 1]), 'node 1 is removed but has edges [(0, 1), (1, 3)]'),
    (dict(type='custom', edges=[(0, 3)], removed=[3]),
     'topology.removed lists 3, but only blocks 1..2 can be removed'),
    (dict(type='custom', edges=[(0, 1), (1, 3)]), 'node 2 has no input edge'),
])
def test_removed_blocks_are_checked(spec, words):
    from mmtopo.models.topology import build_stage_topology
    with pytest.raises(ValueError) as info:
        build_stage_topology(spec, 3, 0)
    assert words in str(info.value)


@pytest.mark.parametrize('topology', [dict(type='residual'), LEARNABLE])
def test_stage_blocks_builds_any_layout_at_the_depths_widths(topology):
    """depth=18 with ResNet-34's layout is ResNet-34 (BasicBlocks at the
    same widths): same-seed init, stock names, same outputs; the depth's
    own layout is the stock depth; the class's layout is left alone."""
    stock, topo = check_same_seed_init(
        lambda: ResNet(34), lambda: TopoResNet(
            depth=18, stage_blocks=(3, 4, 6, 3), topology=topology))
    assert [len(s) for s in topo.stage_graphs] == [3, 4, 6, 3]
    assert topo.stage_blocks == (3, 4, 6, 3)
    check_outputs_match(stock, topo, torch.randn(2, 3, 32, 32))
    assert TopoResNet.arch_settings[18] == ResNet.arch_settings[18]
    check_same_seed_init(
        lambda: ResNet(50),
        lambda: TopoResNet(depth=50, stage_blocks=[3, 4, 6, 3]))
    wide = TopoResNet(
        depth=50,
        stage_blocks=(6, 8, 12, 6),
        base_channels=8,
        topology=LEARNABLE)
    assert [len(s) for s in wide.stage_graphs] == [6, 8, 12, 6]
    assert [s[0].conv3.out_channels
            for s in wide.stage_graphs] == [32, 64, 128, 256]
    cifar = TopoResNetCIFAR(
        depth=18, stage_blocks=(1, 2, 3, 1), base_channels=4)
    assert [len(s) for s in cifar.stage_graphs] == [1, 2, 3, 1]


@pytest.mark.parametrize('stage_blocks', [(3, 4, 6), (3, 4, 0, 3),
                                          (3, 4, 6.0, 3), '3463',
                                          (3, True, 6, 3)])
def test_bad_stage_blocks_name_the_field(stage_blocks):
    with pytest.raises(
            ValueError,
            match='stage_blocks must list 4 positive '
            r'integers \(one per stage, num_stages=4\), got '):
        TopoResNet(depth=18, stage_blocks=stage_blocks)
