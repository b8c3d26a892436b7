"""Dynamic (instance-aware) wiring: routers that gate each edge per sample.

The stage is checked against the formula written here in float64 from the
same blocks and router weights:

* ``p_i = mean over H, W of y_i``; router ``j`` reads
  ``cat_i(p_i * [w_ij != 0])`` over its candidate sources ``i`` (a node not
  run gives zeros), ``g_j = 2 * sigmoid(W2 relu(W1 . + b1) + b2)``, and a
  gate below the threshold is 0 in the forward pass (straight-through
  gradient);
* ``x_j = sum_i g_ij * w_ij * y_i`` per sample, liveness and removed blocks
  as in the static stage (tests/test_models/test_graph_properties.py).
"""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mmdet.models.backbones.resnet import BasicBlock
from mmengine.optim import build_optim_wrapper

from mmtopo.models import TopoMobileNetV2, TopoRegNet, TopoRes2Net, TopoResNet
from mmtopo.models.layers import (EDGE_GRADS, DynamicStageGraph, EdgeRouter,
                                  StageGraph)
from mmtopo.models.topology import build_stage_topology
from mmtopo.utils.complexity import BackboneCosts, count_flops
from tests.helpers import check_with_cp_gradients
from tests.test_models.test_graph_properties import (run, stage_graphs, traced,
                                                     vary_norms)

CHANNELS = 3


def make_dynamic_stage(blocks,
                       edges,
                       weights,
                       removed,
                       routed,
                       threshold=0.0,
                       learnable=True,
                       edge_grad='rms',
                       seed=0,
                       router_scale=1.0):
    """A float64 stage of BasicBlocks with routers on ``routed``, whose gate
    layers are random (not the zero init), so the gates vary."""
    torch.manual_seed(seed)
    topo = build_stage_topology(
        dict(
            type='custom',
            edges=edges,
            weights=weights,
            learnable=learnable,
            removed=removed,
            routed=routed,
            router=dict(type='EdgeRouter', reduction=1, min_hidden=4),
            threshold=threshold,
            # the drawn zeros may cut the stage: its formula is checked too
            allow_cut=True),
        blocks,
        0)
    modules = [BasicBlock(CHANNELS, CHANNELS) for _ in range(blocks)]
    stage = DynamicStageGraph(modules, topo, edge_grad=edge_grad).double()
    vary_norms(stage)
    with torch.no_grad():
        for router in stage.routers.values():
            router.gate.weight.normal_(0, router_scale)
            router.gate.bias.normal_(0, router_scale)
    return stage


def naive_gates(router, feats):
    """The router in float64, written out."""
    h = torch.relu(feats @ router.reduce.weight.T + router.reduce.bias)
    g = 2 * torch.sigmoid(h @ router.gate.weight.T + router.gate.bias)
    if router.threshold > 0:
        g = g + (g * (g >= router.threshold) - g).detach()
    return g


def dynamic_formula(stage, x):
    """The dynamic stage's output by the formula of the module docstring."""
    w, values = stage.edge_weights, stage.edge_weights.detach()
    last = len(stage)
    ys = {0: stage[0](x)}
    for j in range(1, last + 1):
        ins = [i for i in ys if stage.edge_mask[i, j]]
        if not stage.training:
            ins = [i for i in ins if values[i, j] != 0]
        if not any(values[i, j] != 0 for i in ins):
            if j == last:
                return torch.zeros_like(ys[0])
            continue
        n = x.shape[0]
        gate = {i: torch.ones(n, dtype=x.dtype) for i in ins}
        if str(j) in stage.routers:
            cands = stage.edge_mask[:, j].nonzero().flatten().tolist()
            feats = torch.cat([
                ys[i].mean((2, 3)) * float(values[i, j] != 0)
                if i in ys else torch.zeros(n, CHANNELS, dtype=x.dtype)
                for i in cands
            ],
                              dim=1)
            g = naive_gates(stage.routers[str(j)], feats)
            gate = {i: g[:, cands.index(i)] for i in ins}
        total = sum((gate[i].view(-1, 1, 1, 1) * w[i, j] * ys[i] for i in ins),
                    torch.zeros_like(ys[0]))
        if j == last:
            return total
        ys[j] = stage[j](total)
    raise AssertionError('unreachable')


def check_against_formula(stage, training, path, edge_grad):
    stage.train(training)
    x = torch.randn(
        3,
        CHANNELS,
        5,
        5,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(2))
    want_out, want = run(stage, lambda inp: dynamic_formula(stage, inp), x)
    got_out, got = run(stage, stage if path == 'eager' else traced(stage), x)
    torch.testing.assert_close(
        got_out, want_out, rtol=1e-9, atol=1e-9, msg='stage output')
    scale = dict(
        sum=1.0, rms=1 / math.sqrt(CHANNELS), mean=1 / CHANNELS)[edge_grad]
    for name, expected in want.items():
        if name == 'edge_weights':
            expected = expected * scale
        tol = 1e-9 * max(1.0, float(expected.abs().max()))
        torch.testing.assert_close(
            got[name], expected, rtol=1e-8, atol=tol, msg=name)


def _routed(graph):
    """Every node of the drawn graph with an input (all get a router)."""
    blocks, edges, _, _ = graph
    return sorted({j for _, j in edges})


@given(
    graph=stage_graphs(),
    training=st.booleans(),
    path=st.sampled_from(['eager', 'traced']),
    edge_grad=st.sampled_from(EDGE_GRADS),
    threshold=st.sampled_from([0.0, 0.9]))
def test_dynamic_stage_is_the_formula(graph, training, path, edge_grad,
                                      threshold):
    """Outputs and every gradient (routers, edges, blocks, input) of the
    dynamic stage, eager and traced, against the float64 formula."""
    stage = make_dynamic_stage(
        *graph,
        routed=_routed(graph),
        threshold=threshold,
        edge_grad=edge_grad)
    check_against_formula(stage, training, path, edge_grad)


@pytest.mark.parametrize('training', [True, False])
def test_constant_gates_are_the_static_stage_with_weights_g_times_w(training):
    """Router weights zero and gate bias ``b``: every gate is
    ``g = 2 sigmoid(b)`` for every sample, and the stage is the static
    learnable stage with weights ``g * w``: outputs, block and input
    gradients, and the edges' gradients times ``g`` (chain rule)."""
    blocks, edges = 3, [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    weights = [1.0, 0.7, -0.4, 0.3, 0.5, 1.2]
    dyn = make_dynamic_stage(blocks, edges, weights, [], routed=[2, 3])
    bias = {2: [0.3, -1.1], 3: [0.8, 0.0, -0.5]}
    gate = torch.zeros(4, 4, dtype=torch.float64)
    gate[0, 1] = 1.0
    with torch.no_grad():
        for j, b in bias.items():
            router = dyn.routers[str(j)]
            router.gate.weight.zero_()
            router.gate.bias.copy_(torch.tensor(b, dtype=torch.float64))
            for k, i in enumerate(dyn._sources[j]):
                gate[i, j] = 2 * torch.sigmoid(
                    torch.tensor(b[k], dtype=torch.float64))
    torch.manual_seed(0)
    static_topo = build_stage_topology(
        dict(
            type='custom',
            edges=edges,
            learnable=True,
            weights=[
                gate[i, j].item() * w for (i, j), w in zip(edges, weights)
            ]), blocks, 0)
    static = StageGraph(
        [BasicBlock(CHANNELS, CHANNELS) for _ in range(blocks)],
        static_topo).double()
    state = {
        k: v
        for k, v in dyn.state_dict().items()
        if 'routers' not in k and k != 'edge_weights'
    }
    static.load_state_dict(state, strict=False)
    with torch.no_grad():  # g * w in float64 (the spec's floats are fp32)
        static.edge_weights.copy_(gate * dyn.edge_weights)
    dyn.train(training)
    static.train(training)
    x = torch.randn(4, CHANNELS, 6, 6, dtype=torch.float64)
    out_d, grad_d = run(dyn, dyn, x)
    out_s, grad_s = run(static, static, x)
    torch.testing.assert_close(out_d, out_s, rtol=1e-12, atol=1e-12)
    for name, value in grad_s.items():
        if name == 'edge_weights':
            value = value * gate
        torch.testing.assert_close(
            grad_d[name], value, rtol=1e-10, atol=1e-12, msg=name)


def test_each_sample_is_routed_on_its_own_in_eval_mode():
    """Sample ``n``'s output does not depend on the rest of the batch."""
    stage = make_dynamic_stage(
        4, [(i, j) for j in range(1, 5) for i in range(j)],
        None, [],
        routed=[2, 3, 4]).eval()
    x = torch.randn(5, CHANNELS, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        together = stage(x)
        alone = torch.cat([stage(x[n:n + 1]) for n in range(5)])
        shuffled = stage(x.flip(0)).flip(0)
    torch.testing.assert_close(alone, together, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(shuffled, together, rtol=1e-12, atol=1e-12)
    # and the gates do differ between samples: it is not a static graph
    pooled = torch.cat([stage[0](x).mean((2, 3))] * 2, dim=1)
    gates = naive_gates(stage.routers['2'], pooled)
    assert float(gates.detach().std(0).min()) > 1e-3


def test_threshold_cuts_gates_per_sample_and_passes_the_gradient_through():
    """A gate below the threshold contributes nothing for that sample, and
    its router still gets the gradient the open gate would get."""
    edges = [(0, 1), (0, 2), (1, 2)]
    cut = make_dynamic_stage(
        2,
        edges, [1.0, 0.5, 0.5], [],
        routed=[2],
        threshold=0.9,
        router_scale=3.0).train()
    x = torch.randn(6, CHANNELS, 5, 5, dtype=torch.float64)
    y0 = cut[0](x)
    y1 = cut[1](y0)
    feats = torch.cat([y0.mean((2, 3)), y1.mean((2, 3))], dim=1)
    router = cut.routers['2']
    g = 2 * torch.sigmoid(router.gate(router.act(router.reduce(feats))))
    closed = g < 0.9
    assert closed.any() and (~closed).any()  # the draw cuts some, not all
    gates = router(feats)
    assert torch.equal(gates[closed], torch.zeros_like(gates[closed]))
    assert torch.equal(gates[~closed], g[~closed])
    # straight through: d gates / d z is that of the open gate
    upstream = torch.randn_like(gates)
    z = router.gate(router.act(router.reduce(feats)))
    want, = torch.autograd.grad(
        (2 * torch.sigmoid(z) * upstream).sum(), z, retain_graph=True)
    z_cut = z.detach().requires_grad_()
    out = 2 * torch.sigmoid(z_cut)
    out = out + (out * (out >= 0.9) - out).detach()
    got, = torch.autograd.grad((out * upstream).sum(), z_cut)
    torch.testing.assert_close(got, want)
    check_against_formula(cut, True, 'eager', 'rms')


@pytest.mark.parametrize('spec, words', [
    (dict(type='dynamic', threshold=-0.1), 'topology.threshold'),
    (dict(type='dynamic', threshold=2.0), 'topology.threshold'),
    (dict(type='dynamic', router='EdgeRouter'), 'topology.router'),
    (dict(type='dynamic', router=dict(type='EdgeRouter',
                                      reduction=0)), 'router.reduction'),
    (dict(type='dynamic', router=dict(type='EdgeRouter',
                                      in_channels=8)), "'in_channels'"),
    (dict(type='custom', edges=[(0, 1), (1, 2), (0, 2)],
          routed=[2]), 'topology.router is not set'),
    (dict(
        type='custom',
        edges=[(0, 1), (1, 2)],
        routed=[5],
        router=dict(type='EdgeRouter')), 'topology.routed lists 5'),
])
def test_bad_dynamic_specs_name_the_field(spec, words):
    with pytest.raises(ValueError, match=words.replace('.', r'\.')):
        TopoResNet(depth=18, base_channels=4, stem_channels=8, topology=spec)


STOCK = dict(
    resnet50=(
        lambda: __import__('mmdet.models', fromlist=['x']).ResNet(depth=50),
        lambda **kw: TopoResNet(depth=50, **kw)),
    mobilenet_v2=(
        lambda: __import__('mmdet.models', fromlist=['x']).MobileNetV2(),
        lambda **kw: TopoMobileNetV2(**kw)),
    regnet=(lambda: __import__('mmdet.models', fromlist=['x']).RegNet(
        arch='regnetx_400mf'),
            lambda **kw: TopoRegNet(arch='regnetx_400mf', **kw)),
    res2net=(
        lambda: __import__('mmdet.models', fromlist=['x']).Res2Net(depth=50),
        lambda **kw: TopoRes2Net(depth=50, **kw)),
)


@pytest.mark.parametrize('family', sorted(STOCK))
def test_dynamic_residual_init_is_the_stock_backbone(family, tmp_path):
    """Same seed: the stock tensors, plus routers whose gates are exactly 1,
    so the function is the stock one; a stock checkpoint loads with only the
    new keys (edges, routers) missing."""
    make_stock, make_topo = STOCK[family]
    torch.manual_seed(0)
    stock = make_stock()
    stock.init_weights()
    torch.manual_seed(0)
    topo = make_topo(
        topology=dict(type='dynamic', init='residual'),
        norm_eval=stock.norm_eval)
    topo.init_weights()
    theirs = stock.state_dict()
    ours = topo.state_dict()
    new = sorted(k for k in ours if k not in theirs)
    assert new and all('edge_' in k or '.routers.' in k for k in new), new
    for name, value in theirs.items():
        assert torch.equal(ours[name], value), name
    assert any(s.dynamic for s in topo.stage_graphs)
    for stage in topo.stage_graphs:
        for router in stage.routers.values():
            assert not router.gate.weight.any() and not router.gate.bias.any()
            assert router.reduce.weight.std() > 0  # drawn, not zero
    # what is built after the routers gets the stock weights too: the next
    # draw of the random state is the stock one's
    torch.manual_seed(0)
    make_stock()
    after_stock = torch.rand(3)
    torch.manual_seed(0)
    make_topo(topology=dict(type='dynamic'))
    assert torch.equal(torch.rand(3), after_stock)
    x = torch.randn(2, 3, 64, 64)
    for mode in (True, False):
        stock.train(mode)
        topo.train(mode)
        for a, b in zip(stock(x), topo(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    result = topo.load_state_dict(theirs, strict=False)
    assert not result.unexpected_keys
    assert sorted(result.missing_keys) == new


def tiny(topology=dict(type='dynamic', init='uniform'), **kwargs):
    return TopoResNet(
        depth=18,
        base_channels=4,
        stem_channels=8,
        topology=topology,
        **kwargs)


def test_frozen_stages_freeze_the_routers_and_paramwise_cfg_reaches_them():
    model = tiny(frozen_stages=1)
    assert not any(p.requires_grad for p in model.layer1.routers.parameters())
    assert all(p.requires_grad for p in model.layer2.routers.parameters())
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4),
            paramwise_cfg=dict(
                custom_keys={'routers': dict(decay_mult=0.0, lr_mult=2.0)})))
    router_ids = {
        id(p)
        for n, p in model.named_parameters()
        if '.routers.' in n and p.requires_grad
    }
    groups = [
        g for g in wrapper.optimizer.param_groups if any(
            id(p) in router_ids for p in g['params'])
    ]
    assert len(groups) == len(router_ids)
    assert all(g['weight_decay'] == 0.0 and g['lr'] == 0.2 for g in groups)


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny()
    _randomize_routers(plain)
    check_with_cp_gradients(plain, tiny(with_cp=True),
                            torch.randn(2, 3, 32, 32))


def _randomize_routers(model, scale=0.5):
    with torch.no_grad():
        for stage in model.stage_graphs:
            for router in stage.routers.values():
                router.gate.weight.normal_(0, scale)
                router.gate.bias.normal_(0, scale)


def test_channels_last_and_bf16_autocast_keep_fp32_gates():
    torch.manual_seed(0)
    model = tiny()
    _randomize_routers(model)
    model.eval()  # (train-mode BN over 2 x 2 x 2 values amplifies fp noise)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    cl = tiny()
    cl.load_state_dict(model.state_dict())
    cl = cl.to(memory_format=torch.channels_last).eval()
    with torch.no_grad():
        outs = cl(x.to(memory_format=torch.channels_last))
    for a, b in zip(ref, outs):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    model.train()
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
    router = model.layer2.routers['2']
    sum(o.float().sum() for o in outs).backward()
    for stage in model.stage_graphs:
        for name, p in stage.routers.named_parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32, name
            assert torch.isfinite(p.grad).all(), name
    # under autocast (bf16 or fp16) the router computes exactly its fp32
    # gates of the low-precision features it is given
    pooled = torch.randn(2, router.reduce.in_features)
    for dtype in [
            d for d in (torch.bfloat16, torch.float16)
            if _cpu_autocast_takes(d)
    ]:
        with torch.autocast('cpu', dtype=dtype):
            inside = router(pooled.to(dtype))
        assert inside.dtype == torch.float32
        assert torch.equal(inside, router(pooled.to(dtype).float()))


def _cpu_autocast_takes(dtype) -> bool:
    """Whether this torch's CPU autocast takes ``dtype`` (torch 2.1's
    takes bfloat16 only)."""
    try:
        with torch.autocast('cpu', dtype=dtype):
            pass
    except RuntimeError:
        return False
    return True


def _prunable(seed=0):
    """A dynamic TopoResNet-18 with varying gates and three pruned edges:
    layer3 loses block 1 (its only input edge is zero), layer1 and layer4
    one edge each."""
    torch.manual_seed(seed)
    model = tiny()
    _randomize_routers(model)
    with torch.no_grad():
        for stage in model.stage_graphs:
            stage.edge_weights.add_(
                torch.rand(stage.edge_weights.shape) * stage.edge_mask)
        model.layer1.edge_weights[0, 2] = 0.0
        model.layer3.edge_weights[0, 1] = 0.0
        model.layer4.edge_weights[1, 2] = 0.0
    return model


def test_export_prune_and_deploy_compute_the_same_function():
    """The exported graph keeps the routers of the nodes kept, each reading
    the candidates left; built from it and loaded with
    ``graph_mismatch='adapt'`` (the routers are sliced), it computes the
    trained model's function, with fewer parameters and the FLOPs that
    ``BackboneCosts`` predicts, routers included."""
    model = _prunable().eval()
    specs = model.export_topology()
    assert specs[2]['removed'] == [1] and specs[2]['routed'] == [2]
    assert specs[0]['edges'] == [(0, 1), (1, 2)]
    assert all(s['router'] == dict(type='EdgeRouter') for s in specs)
    deployed = tiny([dict(s, learnable=False) for s in specs],
                    graph_mismatch='adapt')
    deployed.load_state_dict(model.state_dict(), strict=False)
    assert deployed.layer3.routers['2'].reduce.in_features == 16  # 1 of 2
    deployed.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x), deployed(x)):
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
    assert sum(p.numel() for p in deployed.parameters()) < sum(
        p.numel() for p in model.parameters())
    costs = BackboneCosts(model, (3, 32, 32))
    image = torch.zeros(1, 3, 32, 32)
    assert costs.flops(model.topology_graphs()) == count_flops(
        deployed, (image, ))
    assert costs.total == count_flops(tiny(), (image, ))


def test_flops_count_the_routers_and_their_pooling():
    """Dense dynamic minus dense learnable FLOPs: each router's two Linear
    layers (``S * C * h + h * S``) and one global pool (``C * H * W``) per
    node output a router reads."""
    image = torch.zeros(1, 3, 32, 32)
    torch.manual_seed(0)
    dyn = tiny()
    static = tiny(dict(type='learnable', init='uniform'))
    extra = 0
    # a 32x32 image: maps of 8, 4, 2 and 1 pixels a side in layer1..4
    for stage, side in zip(dyn.stage_graphs, (8, 4, 2, 1)):
        pooled = set()
        for j, router in stage.routers.items():
            s = router.num_inputs
            c, h = router.in_channels, router.reduce.out_features
            extra += s * c * h + h * s
            pooled.update(stage._sources[int(j)])
        if stage.routers:
            extra += len(pooled) * c * side**2
    assert count_flops(dyn, (image, )) - count_flops(static, (image, )) \
        == extra


def test_the_sparsity_hook_prunes_the_static_weights_and_spares_routers():
    """The hook's step on a dynamic model is its step on the static
    learnable model with the same edges; the routers are not touched."""
    from mmengine.optim import OptimWrapper

    from mmtopo.engine.hooks import EdgeSparsityHook
    from tests.test_engine.test_edge_sparsity_hook import fake_runner
    from tests.toy import ToyClassifier
    edges = []
    for topology in (dict(type='dynamic', init='uniform'),
                     dict(type='learnable', init='uniform')):
        torch.manual_seed(0)
        model = ToyClassifier(topology=topology)
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
        hook = EdgeSparsityHook(lambda_=2.0)
        runner = fake_runner(model, wrapper)
        hook.before_train(runner)
        routers = {
            n: p.detach().clone()
            for n, p in model.named_parameters() if '.routers.' in n
        }
        hook.after_train_iter(runner, 0)
        for n, p in model.named_parameters():
            if n in routers:
                assert torch.equal(p.detach(), routers[n]), n
        edges.append(
            [s.edge_weights.detach() for s in model.backbone.stage_graphs])
        assert bool(routers) == (topology['type'] == 'dynamic')
    for dyn, static in zip(*edges):
        assert torch.equal(dyn, static)
    assert any(bool((d == 0).any()) for d in edges[0])


def test_a_static_checkpoint_loads_with_only_the_routers_missing():
    """A static learnable model's weights load into the dynamic one with
    only the router keys missing (gates 1: the same function)."""
    torch.manual_seed(0)
    static = tiny(dict(type='learnable', init='uniform'))
    dyn = tiny()
    result = dyn.load_state_dict(static.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all('.routers.' in k
                                       for k in result.missing_keys)
    static.eval()
    dyn.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(static(x), dyn(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_router_is_registered_and_builds_from_config():
    from mmengine.registry import MODELS
    router = MODELS.build(
        dict(type='EdgeRouter', in_channels=64, num_inputs=3, reduction=8))
    assert isinstance(router, EdgeRouter)
    assert router.reduce.out_features == 8 and router.gate.out_features == 3
    torch.testing.assert_close(router(torch.randn(4, 192)), torch.ones(4, 3))


DDP_TOPOLOGY = dict(type='dynamic', init='uniform')


def _ddp_worker(rank, world_size, port, out_dir):
    """Three SGD steps of a dynamic toy classifier under DDP, each rank
    its own data; saves every parameter."""
    import os

    from mmengine.optim import OptimWrapper

    from tests.helpers import init_gloo
    from tests.toy import ToyClassifier, ToyDataset
    init_gloo(rank, world_size, port)
    torch.manual_seed(0)
    model = ToyClassifier(topology=DDP_TOPOLOGY)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    wrapper = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.2))
    for it in range(3):
        data = ToyDataset(size=8, seed=10 * it + rank)
        wrapper.update_params(
            ddp(data.images, data.labels, mode='loss')['loss'])
    torch.save({
        n: p.detach()
        for n, p in model.named_parameters()
    }, os.path.join(out_dir, f'rank{rank}.pth'))
    torch.distributed.destroy_process_group()


def test_ddp_ranks_stay_identical_routers_included(tmp_path):
    """Two gloo ranks with their own data: every parameter, routers and
    edges included, is bit-equal across ranks after three steps, and the
    routers did train (their gate layers left the zero init)."""
    from tests.helpers import free_port, spawn_ranks
    files = [tmp_path / f'rank{r}.pth' for r in (0, 1)]
    spawn_ranks(
        _ddp_worker, 2, args=(2, free_port(), str(tmp_path)), outputs=files)
    rank0, rank1 = (torch.load(f) for f in files)
    assert sorted(rank0) == sorted(rank1)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    gates = [v for n, v in rank0.items() if n.endswith('gate.weight')]
    assert gates and all(g.abs().sum() > 0 for g in gates)


def test_resume_restores_the_routers_and_their_momentum(tmp_path):
    """A run resumed from iteration 10 starts from the routers and the
    SGD momentum of the routers that the checkpoint holds."""
    from mmengine.hooks import Hook

    from tests.toy import toy_runner

    class Spy(Hook):

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if 'iter' in seen:
                return
            seen['iter'] = runner.iter
            model = runner.model
            seen['params'] = {
                n: p.detach().clone()
                for n, p in model.named_parameters() if '.routers.' in n
            }
            state = runner.optim_wrapper.optimizer.state
            seen['momentum'] = {
                n: state[p]['momentum_buffer'].clone()
                for n, p in model.named_parameters() if '.routers.' in n
            }

    seen = {}
    toy_runner(tmp_path, max_iters=10, topology=DDP_TOPOLOGY).train()
    saved = torch.load(tmp_path / 'iter_10.pth')
    toy_runner(
        tmp_path,
        max_iters=11,
        topology=DDP_TOPOLOGY,
        resume=True,
        hooks=[Spy()]).train()
    assert seen['iter'] == 10
    assert seen['params']
    for name, value in seen['params'].items():
        assert torch.equal(value, saved['state_dict'][name]), name
    names = [
        n for n, _ in toy_runner(
            tmp_path /
            'x', max_iters=1, topology=DDP_TOPOLOGY).model.named_parameters()
    ]
    momenta = saved['optimizer']['state']
    for name, value in seen['momentum'].items():
        assert torch.equal(value,
                           momenta[names.index(name)]['momentum_buffer']), name
    assert any(v.abs().sum() > 0 for v in seen['momentum'].values())


def test_an_outer_init_cfg_cannot_move_the_gates_off_one():
    """A backbone ``init_cfg`` that re-initialises every Linear reaches the
    routers' first layers, but the gate layers end at zero: gates 1."""
    torch.manual_seed(0)
    model = tiny(init_cfg=[
        dict(type='Kaiming', layer='Conv2d'),
        dict(type='Normal', layer='Linear', std=3.0)
    ])
    before = model.layer2.routers['2'].reduce.weight.detach().clone()
    model.init_weights()
    router = model.layer2.routers['2']
    assert not torch.equal(router.reduce.weight, before)  # it was reached
    assert float(router.reduce.weight.std()) > 1.0  # std 3, not the default
    for stage in model.stage_graphs:
        for r in stage.routers.values():
            assert not r.gate.weight.any() and not r.gate.bias.any()


def test_dynamic_is_chosen_per_stage():
    """A list of specs: routers only where the spec is dynamic; a dynamic
    stage of one block has none (one edge, fixed)."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=18,
        base_channels=4,
        stem_channels=8,
        topology=[
            dict(type='dynamic'),
            dict(type='learnable'),
            dict(type='residual'),
            dict(type='dynamic')
        ])
    assert [sorted(s.routers) for s in model.stage_graphs] == [['2'], [], [],
                                                               ['2']]
    assert [s.dynamic
            for s in model.stage_graphs] == [True, False, False, True]
    one = build_stage_topology(dict(type='dynamic'), 1, 0)
    assert one.routed == () and not one.learnable
    three = build_stage_topology(dict(type='dynamic'), 3, 0)
    assert three.routed == (2, 3) and three.learnable
    out = model(torch.randn(2, 3, 32, 32))
    assert [o.shape[1] for o in out] == [4, 8, 16, 32]
