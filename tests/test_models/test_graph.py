"""The stage graph's aggregation against the plain formula.

Every test here compares the fused aggregation (FanOut / WeightedSum, sums
recomputed in backward, shortcuts for zero and unit weights) with a naive
``x_j = sum_i w_ij * y_i`` written in the test from the same blocks, in
float64, with unequal weights of both signs, so that treating a weight as 1,
dropping one, or mixing up which weight goes with which input all change the
numbers by far more than the tolerance.
"""
import copy
import math
from unittest import mock

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmtopo.models import TopoResNet
from mmtopo.models.layers import (EdgeGradients, EdgeSink, FanOut, WeightedSum,
                                  edge_grad_scale, weighted_sum)
from tests.helpers import as_if_compiling

# depth 34: stages of 3/4/6/3 blocks, so nodes have up to 6 weighted inputs
DEPTH = 34
BLOCKS = (3, 4, 6, 3)
TOPOLOGIES = {
    'learnable':
    dict(type='learnable', init='residual'),
    'complete':
    dict(type='complete'),
    'random':
    dict(type='random', graph='er', p=0.5, seed=1),
    'custom_fixed': [
        dict(type='custom', edges=[(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)]),
        dict(type='complete'),
        dict(type='residual'),
        dict(type='complete')
    ],
    'custom_learnable': [
        dict(
            type='custom',
            edges=[(0, 1), (1, 2), (0, 2), (2, 3), (0, 3)],
            learnable=True),
        dict(
            type='custom',
            edges=[(0, 1), (1, 2), (2, 3), (0, 3), (3, 4), (1, 4)],
            learnable=True),
        dict(type='learnable', init='uniform'),
        dict(type='learnable', init='ones')
    ],
}


def random_signed_weights(model, seed=0):
    """Every edge a different weight in +-[0.3, 1.3]: no two inputs of a
    node weigh the same, none is 0 or 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in model.stage_graphs:
            mask = stage.edge_mask
            magnitude = torch.rand(
                mask.shape, generator=gen, dtype=torch.float64) + 0.3
            sign = torch.randint(0, 2, mask.shape, generator=gen) * 2 - 1
            stage.edge_weights.copy_(magnitude * sign * mask.cpu())


def naive_forward(model, x):
    """The stage outputs by the plain formula, from the model's modules."""
    x = model.maxpool(model.relu(model.norm1(model.conv1(x))))
    outs = []
    for stage in model.stage_graphs:
        w = stage.edge_weights
        ys = [stage[0](x)]
        for j in range(1, len(stage) + 1):
            s = sum(w[i, j] * ys[i] for i in range(j) if stage.edge_mask[i, j])
            if j == len(stage):
                x = s
            else:
                ys.append(stage[j](s))
        outs.append(x)
    return outs


def loss_of(outs, seed=1):
    """A loss that weighs every element of every stage output differently."""
    gen = torch.Generator().manual_seed(seed)
    return sum((
        o *
        torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device)).sum()
               for o in outs)


def grads(model, x, forward):
    model.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    outs = forward(x)
    loss_of(outs).backward()
    got = {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }
    got['input'] = x.grad.clone()
    return [o.detach() for o in outs], got


def traced(model):
    """The model's forward as ``torch.compile`` sees it (no host reads:
    :meth:`StageGraph.forward_traceable`), run eagerly."""

    def forward(x):
        with as_if_compiling():
            return model(x)

    return forward


def check_against_the_plain_formula(name, with_cp, path, edge_grad=None):
    """Outputs and every gradient of the fused (or traced) forward against
    the plain formula; the edges' gradients times ``1``, ``1 / sqrt(C)``
    or ``1 / C`` as ``edge_grad`` says."""
    torch.manual_seed(0)
    extra = {} if edge_grad is None else dict(edge_grad=edge_grad)
    model = TopoResNet(
        depth=DEPTH,
        base_channels=4,
        stem_channels=8,
        topology=TOPOLOGIES[name],
        with_cp=with_cp,
        **extra).double()
    random_signed_weights(model)
    model.train()  # batch statistics, and the sums are recomputed
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)

    ref_outs, ref = grads(model, x, lambda inp: naive_forward(model, inp))
    outs, got = grads(model, x, model if path == 'fused' else traced(model))

    assert len(outs) == 4
    for stage, (a, b) in enumerate(zip(outs, ref_outs)):
        torch.testing.assert_close(
            a, b, rtol=1e-10, atol=1e-10, msg=f'stage {stage} output')
    channels = {
        f'layer{s + 1}.edge_weights': o.shape[1]
        for s, o in enumerate(outs)
    }
    # the default is 'rms'
    divide = dict(
        rms=math.sqrt, mean=float, sum=lambda c: 1.0)[edge_grad or 'rms']
    for key, expected in ref.items():
        if key in channels:  # the edges' reduction over the channels
            expected = expected / divide(channels[key])
        # float64: summation order alone moves the last ~4 digits
        scale = float(expected.abs().max())
        torch.testing.assert_close(
            got[key], expected, rtol=1e-7, atol=1e-9 * scale, msg=key)
    learned = [k for k in got if k in channels]
    assert len(learned) == (4 if name.endswith('learnable') else 0)


@pytest.mark.parametrize('path', ['fused', 'traceable'])
@pytest.mark.parametrize('with_cp', [False, True])
@pytest.mark.parametrize('name', sorted(TOPOLOGIES))
def test_matches_the_plain_formula_in_float64(name, with_cp, path):
    """The default: edges get their true gradient divided by sqrt(C)."""
    check_against_the_plain_formula(name, with_cp, path)


@pytest.mark.parametrize('path', ['fused', 'traceable'])
@pytest.mark.parametrize('edge_grad', ['sum', 'rms', 'mean'])
def test_edge_grad_reduces_the_true_gradient_as_named(edge_grad, path):
    check_against_the_plain_formula('custom_learnable', False, path, edge_grad)


@pytest.mark.parametrize('edge_grad,scale', [('sum', 1.0),
                                             ('rms', 1 / math.sqrt(5)),
                                             ('mean', 1 / 5)])
def test_edge_gradient_is_the_true_gradient_times_the_named_scale(
        edge_grad, scale):
    y = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    g = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    w = torch.tensor([[0.7]], dtype=torch.float64, requires_grad=True)
    part, = fan_out(w, 0, [0], [0.7], y, edge_grad_scale(y, edge_grad))
    part.backward(g)
    assert edge_grad_scale(y, edge_grad) == scale
    torch.testing.assert_close(w.grad, (g * y).sum().reshape(1, 1) * scale)


def test_an_unknown_edge_grad_is_named():
    with pytest.raises(ValueError) as info:
        TopoResNet(
            depth=18,
            base_channels=4,
            edge_grad='channels',
            topology=dict(type='learnable'))
    assert str(info.value) == ("edge_grad must be one of ('sum', 'rms', "
                               "'mean'), got 'channels'")


def fan_out(w, i, columns, values, y, grad_scale=1.0):
    """Node ``i``'s fan-out, with ``w`` as the stage's edge weights."""
    sink = EdgeSink(grad_scale)
    edges, = EdgeGradients.apply([sink], w)
    return FanOut.apply(edges, i, columns, values, sink.dots, y)


def test_fan_out_and_weighted_sum_gradcheck():
    """The two halves of an edge: sources fan out, nodes sum their inputs;
    weights with zeros and ones take the shortcuts; the edge gradients of
    all fan-outs meet in one :class:`EdgeGradients`."""

    def two_nodes(w, *ys):
        values = w.detach().tolist()
        sink = EdgeSink()  # the true gradient: scale 1 (edge_grad='sum')
        edges, = EdgeGradients.apply([sink], w)
        parts = [
            FanOut.apply(edges, i, [0, 1], values[i], sink.dots, y)
            for i, y in enumerate(ys)
        ]
        return tuple(
            WeightedSum.apply([row[j] for row in values], *(p[j]
                                                            for p in parts))
            for j in range(2))

    torch.manual_seed(0)
    ys = [
        torch.randn(2, 3, 4, 4, dtype=torch.double, requires_grad=True)
        for _ in range(3)
    ]
    for values in ([[0.3, 1.0], [-1.2, 0.0],
                    [0.7, 0.5]], [[1.0, 0.0], [0.0, 0.0],
                                  [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0],
                                                [0.0, 0.0]], [[1.0, 1.0],
                                                              [1.0, 1.0],
                                                              [0.5, 1.0]]):
        w = torch.tensor(values, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(two_nodes, (w, *ys))


@pytest.mark.parametrize(
    'weights',
    [[0.5, -2.0, 0.25], [1.0, 0.75, -1.5], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0],
     [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 3.0]])
def test_weighted_sum_is_the_formula(weights):
    torch.manual_seed(0)
    xs = [torch.randn(2, 3, 4, 4, dtype=torch.float64) for _ in weights]
    expected = sum(w * x for w, x in zip(weights, xs))
    out = weighted_sum(xs, weights)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    live = [x for w, x in zip(weights, xs) if w != 0]
    if [w for w in weights if w != 0] == [1.0]:
        assert out is live[0]  # a lone unit input passes through, no copy
    else:
        assert all(out is not x for x in xs)  # never written into an input


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_edge_gradients_accumulate_in_float32(dtype):
    """A bf16/fp16 dot product over a large map would lose the gradient (or
    overflow); the edge gradient is accumulated in float32."""
    torch.manual_seed(0)
    y = torch.rand(4, 64, 32, 32) + 1.0
    g = torch.rand(4, 64, 32, 32) + 1.0
    w = torch.tensor([[0.5]], requires_grad=True)
    part, = fan_out(w, 0, [0], [0.5], y.to(dtype), 1 / 64)
    part.backward(g.to(dtype))
    exact = (g.to(dtype).double() * y.to(dtype).double()).sum() / 64
    assert w.grad.dtype == torch.float32
    # float32 accumulation of 262144 products of ~2: relative error ~1e-6;
    # a half-precision running sum would be off by far more than 1%
    torch.testing.assert_close(
        w.grad.double(), exact.reshape(1, 1), rtol=1e-4, atol=0)


def layer3_model():
    """A small float64 TopoResNet-34 up to layer 3 (6 blocks), every edge a
    different signed weight; edges get their true gradient, so that the
    plain formula's gradients compare as they are."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=DEPTH,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'),
        out_indices=(2, ),
        edge_grad='sum').double()
    random_signed_weights(model)
    return model


def test_a_node_without_active_inputs_is_removed():
    """Layer 3 (6 blocks): node 2's inputs are all zero, so it is removed;
    node 4 is fed only by node 2 and an exactly-zero edge, so it goes too.
    Neither block runs, and the stage equals the plain formula over the
    remaining nodes, in value and gradient; edges at removed nodes get none."""
    model = layer3_model()
    stage = model.layer3
    with torch.no_grad():
        stage.edge_weights[:, 2] = 0.0
        stage.edge_weights[:, 4] = 0.0
        stage.edge_weights[2, 4] = 0.7
    assert stage.live_nodes() == [True, True, False, True, False, True, True]
    calls = []
    for j, block in enumerate(stage):
        block.register_forward_hook(lambda m, i, o, j=j: calls.append(j))
    removed = {2, 4}

    def naive(inp):
        inp = model.maxpool(model.relu(model.norm1(model.conv1(inp))))
        inp = model.layer2(model.layer1(inp))
        w = stage.edge_weights
        ys = {0: stage[0](inp)}
        for j in range(1, len(stage) + 1):
            s = sum(w[i, j] * ys[i] for i in range(j) if i in ys)
            if j == len(stage):
                return (s, )
            if j not in removed:
                ys[j] = stage[j](s)

    model.train()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    ref_outs, ref = grads(model, x, naive)
    calls.clear()
    outs, got = grads(model, x, model)
    assert sorted(calls) == [0, 1, 3, 5]
    assert sorted(got) == sorted(ref)
    torch.testing.assert_close(outs[0], ref_outs[0], rtol=1e-10, atol=1e-10)
    for key, expected in ref.items():  # edges: the true gradient
        scale = float(expected.abs().max()) or 1.0
        torch.testing.assert_close(
            got[key], expected, rtol=1e-7, atol=1e-9 * scale, msg=key)
    grad = got['layer3.edge_weights']
    assert not grad[:, 2].any() and not grad[2].any()  # edges at node 2
    assert not grad[:, 4].any() and not grad[4].any()
    assert grad[0, 1] != 0 and grad[1, 3] != 0  # live edges learn


def test_a_stage_cut_apart_outputs_zeros():
    model = TopoResNet(depth=18, topology=dict(type='learnable'))
    with torch.no_grad():
        model.layer2.edge_weights[:, 2] = 0.0  # nothing reaches the output
    assert not model.layer2.connects_input_to_output()
    model.train()
    outs = model(torch.randn(2, 3, 32, 32))
    assert outs[1].shape == (2, 128, 4, 4) and not outs[1].any()


def test_without_gradients_a_block_that_reaches_nothing_is_not_run():
    """Layer 3: node 3's out-edges are all zero. Outside training (eval
    mode, or no gradients: inference, FLOP counting) its block is skipped
    and the output is the same; in training it runs, so that the zero edges
    leaving it get the gradient that lets them grow back."""
    model = layer3_model()
    stage = model.layer3
    with torch.no_grad():
        stage.edge_weights[3, :] = 0.0
    calls = []
    for j, block in enumerate(stage):
        block.register_forward_hook(lambda m, i, o, j=j: calls.append(j))
    model.eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        skipped = model(x)[0]
    assert sorted(calls) == [0, 1, 2, 4, 5]
    calls.clear()
    with torch.enable_grad():
        assert torch.equal(model(x)[0], skipped)  # eval: skipped too
    assert sorted(calls) == [0, 1, 2, 4, 5]
    stage.train()  # the stage trains, its BatchNorms stay as in eval
    for block in stage:
        block.eval()
    calls.clear()
    outs, got = grads(model, x, model)
    assert sorted(calls) == [0, 1, 2, 3, 4, 5]
    torch.testing.assert_close(skipped, outs[0], rtol=0, atol=0)
    grad = got['layer3.edge_weights']
    assert (grad[3, 4:] != 0).all()  # zero edges leaving node 3 can regrow
    assert not grad[:3, 3].any()  # node 3 affects nothing: no gradient in


def test_a_block_input_is_rebuilt_in_backward_not_kept():
    """The summed input of a block is not saved for backward: autograd
    keeps its recipe (inputs and weights) and rebuilds it when needed."""
    from mmtopo.models.layers import edge_functions as graph
    model = TopoResNet(
        depth=DEPTH,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'),
        out_indices=(3, ))
    random_signed_weights(model)
    model.train()
    unpacked = []
    original = graph._unpack

    def spy(packed):
        unpacked.append(type(packed).__name__)
        return original(packed)

    with mock.patch.object(graph, '_unpack', spy):
        model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    # one recipe per saved use of each summed block input (node 1..n-1)
    recipes = unpacked.count('tuple')
    assert recipes >= sum(len(s) - 1 for s in model.stage_graphs)


def test_graph_mismatch_messages_describe_both_graphs():
    """The error names the stage, both graphs' nodes and edges, or the
    shape when the checkpoint's mask is not a square matrix."""
    small = TopoResNet(depth=18, topology=dict(type='residual'))
    state = small.state_dict()
    model = TopoResNet(depth=18, topology=dict(type='complete'))
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    assert str(info.value).startswith(
        "checkpoint graph does not fit the model at 'layer1.edge_mask': "
        'checkpoint has 3 nodes with edges [(0, 1), (1, 2)], model has 3 '
        'nodes with edges [(0, 1), (0, 2), (1, 2)] (to load it into this '
        "graph on purpose, set graph_mismatch='adapt')")
    state['layer1.edge_mask'] = torch.ones(3, 4, dtype=torch.bool)
    with pytest.raises(
            ValueError,
            match=r'checkpoint has a mask of shape '
            r'\(3, 4\), model has 3 nodes'):
        model.load_state_dict(state)
    state['layer1.edge_mask'] = torch.ones(3, dtype=torch.bool)
    with pytest.raises(
            ValueError,
            match=r'checkpoint has a mask of shape '
            r'\(3,\), model has 3 nodes'):
        model.load_state_dict(state)


def test_weighted_sum_of_only_zero_weights_is_zeros():
    x = torch.randn(2, 3, 4, 4)
    out = weighted_sum([x], [0.0])
    assert out.shape == x.shape and not out.any()


def test_residual_wiring_adds_nothing_to_the_autograd_graph():
    """The residual wiring is literally ResNet: no FanOut or WeightedSum
    node anywhere in its backward graph."""
    model = TopoResNet(
        depth=18, base_channels=4, stem_channels=4, out_indices=(3, ))
    model.train()
    out = model(torch.randn(2, 3, 32, 32))[0]
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    names = {type(n).__name__ for n in seen}
    assert 'ConvolutionBackward0' in names
    assert not any('FanOut' in n or 'WeightedSum' in n for n in names)


def test_a_removed_block_cannot_be_indexed_and_block_shapes_are_checked():
    stage = TopoResNet(
        depth=34,
        topology=[
            dict(type='custom', edges=[(0, 2), (2, 3)], removed=[1]),
            dict(type='residual'),
            dict(type='residual'),
            dict(type='residual')
        ]).layer1
    with pytest.raises(IndexError) as info:
        stage[1]
    assert str(info.value) == 'block 1 is removed from this stage'
    model = TopoResNet(depth=18)
    state = model.state_dict()
    state['layer1.0.conv1.weight'] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(
            RuntimeError, match=r'size mismatch for '
            r'layer1\.0\.conv1\.weight'):
        model.load_state_dict(state)


def test_stage_graph_built_directly_checks_its_arguments():
    from mmdet.models.backbones.resnet import BasicBlock

    from mmtopo.models.layers import StageGraph
    from mmtopo.models.topology import build_stage_topology
    blocks = [BasicBlock(4, 4), BasicBlock(4, 4)]
    stage = StageGraph(blocks,
                       build_stage_topology(dict(type='residual'), 2, 0))
    assert stage.graph_mismatch == 'error'
    init_cfg = dict(type='Constant', val=0.5, layer='Conv2d')
    assert StageGraph(
        blocks,
        build_stage_topology(dict(type='residual'), 2, 0),
        init_cfg=init_cfg).init_cfg == init_cfg
    with pytest.raises(ValueError) as info:
        StageGraph(blocks, build_stage_topology(dict(type='residual'), 3, 0))
    assert str(info.value) == ('topology mask of shape (4, 4) does not fit '
                               'a stage of 2 blocks')
    with pytest.raises(ValueError) as info:
        StageGraph(
            blocks,
            build_stage_topology(dict(type='residual'), 2, 0),
            graph_mismatch='ignore')
    assert str(info.value) == ("graph_mismatch must be one of ('error', "
                               "'adapt'), got 'ignore'")


def test_an_edge_tensor_of_another_size_is_a_load_error():
    model = TopoResNet(depth=18, topology=dict(type='learnable'))
    state = model.state_dict()
    state['layer1.edge_weights'] = torch.zeros(2, 2)
    with pytest.raises(
            RuntimeError, match=r'size mismatch for '
            r'layer1\.edge_weights'):
        model.load_state_dict(state)


def test_the_traceable_path_switches_off_a_node_without_active_inputs():
    """Under ``torch.compile`` the weights stay on the device, so a node
    whose inputs are all zero runs, but its output is multiplied by 0:
    values and edge gradients equal the fused path's, which skips it."""
    model = layer3_model()
    stage = model.layer3
    with torch.no_grad():
        stage.edge_weights[:, 2] = 0.0  # node 2: no active input
        stage.edge_weights[:, 4] = 0.0
        stage.edge_weights[2, 4] = 0.7  # node 4: fed only by dead node 2
    model.train()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    ref_outs, ref = grads(model, x, model)
    outs, got = grads(model, x, traced(model))
    torch.testing.assert_close(outs[0], ref_outs[0], rtol=1e-10, atol=1e-10)
    for key, value in got.items():
        expected = ref.get(key, torch.zeros_like(value))  # dead: no gradient
        scale = float(expected.abs().max()) or 1.0
        torch.testing.assert_close(
            value, expected, rtol=1e-7, atol=1e-9 * scale, msg=key)
    assert any(k.startswith('layer3.2.') for k in got)  # it ran, gated


def count_host_reads(forward):
    """How many times ``forward()`` copies a tensor to Python lists."""
    reads = []
    original = torch.Tensor.tolist

    def spy(self):
        reads.append(tuple(self.shape))
        return original(self)

    with mock.patch.object(torch.Tensor, 'tolist', spy):
        forward()
    return reads


def test_the_backbone_assembles_its_edge_gradients_once():
    """All stages' edge gradients come out of one stack, each exactly what
    the stage computes when called alone (its own EdgeGradients); a stage
    whose output the loss does not use gets no gradient, as an unused
    parameter does."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=DEPTH,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    random_signed_weights(model)
    model.train()
    x = torch.randn(2, 3, 32, 32)
    outs = model(x)
    (outs[1].square().mean() + outs[0].mean()).backward()
    together = [s.edge_weights.grad for s in model.stage_graphs]
    assert together[2] is None and together[3] is None
    model.zero_grad(set_to_none=True)
    stem = model.maxpool(model.relu(model.norm1(model.conv1(x))))
    first = model.layer1(stem)
    (model.layer2(first).square().mean() + first.mean()).backward()
    for shared, alone in zip(together[:2], model.stage_graphs[:2]):
        torch.testing.assert_close(
            shared, alone.edge_weights.grad, rtol=0, atol=0)


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_a_backbone_forward_reads_the_edge_weights_once(mode):
    """One device-to-host copy for all stages (on a GPU, one sync per
    forward, not one per stage); a stage called alone reads its own."""
    model = TopoResNet(
        depth=DEPTH,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    random_signed_weights(model)
    getattr(model, mode)()
    x = torch.randn(2, 3, 32, 32)
    # 4 + 5 + 7 + 4 nodes: every edge weight of the backbone in one read
    assert count_host_reads(lambda: model(x)) == [(16 + 25 + 49 + 16, )]
    outs = model(x)
    stage_in = model.layer3(
        model.layer2(
            model.layer1(
                model.maxpool(model.relu(model.norm1(model.conv1(x)))))))
    assert count_host_reads(lambda: model.layer4(stage_in)) == [(4, 4)]
    torch.testing.assert_close(model.layer4(stage_in), outs[3])
    assert all(stage._preread is None for stage in model.stage_graphs)


@pytest.mark.parametrize('topology', [
    dict(type='learnable', init='residual'),
    dict(type='learnable', init='uniform'),
    dict(type='residual'),
    dict(type='complete'),
    dict(type='dynamic', init='uniform'),
    [
        dict(
            type='custom', edges=[(0, 2),
                                  (2, 3)], removed=[1], learnable=True),
        dict(type='learnable'),
        dict(type='random', graph='er', p=0.5),
        dict(type='residual')
    ]
])
def test_torch_compile_traces_each_backbone_without_graph_breaks(topology):
    """No host reads in a compiled forward: one graph for the whole
    backbone, and it stays valid when the weights change."""
    torch._dynamo.reset()
    model = TopoResNet(
        depth=DEPTH, base_channels=4, stem_channels=8, topology=topology)
    x = torch.randn(2, 3, 32, 32)
    for mode in ('train', 'eval'):
        getattr(model, mode)()
        explained = torch._dynamo.explain(model)(x)
        assert explained.graph_break_count == 0, explained.break_reasons
        assert explained.graph_count == 1


def test_compiled_training_step_matches_eager():
    """``torch.compile`` (inductor) against eager: outputs and every
    gradient, edges included, to 1e-4 of their scale (float32 with another
    summation order; BatchNorm over few values amplifies that, so the
    inputs are large enough to keep it well conditioned). Weights change
    between the steps, a node dies, and nothing recompiles."""
    torch.manual_seed(0)
    eager = TopoResNet(
        depth=18,
        base_channels=8,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    random_signed_weights(eager)
    eager.train()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    x = torch.randn(4, 3, 64, 64)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for step in range(2):
            if step == 1:
                for model in (eager, compiled_model):
                    with torch.no_grad():
                        model.layer2.edge_weights[:, 1] = 0  # node 1 dies
                        model.layer3.edge_weights.mul_(0.5)
            ref_outs, ref = grads(eager, x, eager)
            outs, got = grads(compiled_model, x, compiled)
            for a, b in zip(outs, ref_outs):
                torch.testing.assert_close(
                    a, b, rtol=0, atol=1e-4 * b.abs().max())
            for key, expected in ref.items():
                torch.testing.assert_close(
                    got[key],
                    expected,
                    rtol=0,
                    atol=1e-4 * float(expected.abs().max()),
                    msg=key)
            block = [got[k] for k in got if k.startswith('layer2.1.')]
            assert len(block) == 6  # conv1, bn1 (2), conv2, bn2 (2)
            assert any(g.any() for g in block) == (step == 0)


class CopyLog(TorchDispatchMode):
    """Records the shape of every tensor copied while active."""

    COPIES = ('copy_', 'clone', '_to_copy', 'contiguous')

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split('.')[0] in self.COPIES:
            self.shapes.append(tuple(args[0].shape))
        return func(*args, **(kwargs or {}))


def test_channels_last_stays_channels_last_without_copies():
    """A channels_last step makes no copy of any feature map (they have
    the batch size 3 as first dimension; no weight does) and returns
    channels_last outputs, with the same gradients as the default layout."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=18,
        base_channels=8,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    random_signed_weights(model)
    model.train()
    x = torch.randn(4, 3, 64, 64)
    ref_outs, ref = grads(model, x, model)
    model = model.to(memory_format=torch.channels_last)
    x = x.to(memory_format=torch.channels_last)
    with CopyLog() as log:
        outs, got = grads(model, x, model)
    assert log.shapes, 'the log sees copies (the gradients taken out)'
    # the only 4-d copies of the batch: grads() takes the input and its
    # gradient out
    assert [s for s in log.shapes
            if len(s) == 4 and s[0] == 4] == [(4, 3, 64, 64)] * 2
    assert all(
        o.is_contiguous(memory_format=torch.channels_last) for o in outs)
    for a, b in zip(outs, ref_outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    for key in ('layer1.edge_weights', 'layer3.edge_weights'):
        torch.testing.assert_close(
            got[key],
            ref[key],
            rtol=0,
            atol=1e-4 * float(ref[key].abs().max()))


def test_bf16_autocast_edge_gradients_match_float32():
    """A training step under CPU bf16 autocast: the edge gradients are
    float32 and within 2% of the float32 step's (of each stage's largest).
    Measured: at most 0.42% under ATen's default, avx2 and avx512 kernels,
    about bf16's unit roundoff (2^-8 = 0.39%); an edge gradient reduced in
    bf16 over a map of 2^16 values would be off by far more."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=DEPTH,
        base_channels=16,
        stem_channels=16,
        topology=dict(type='learnable', init='uniform'))
    model.init_weights()  # the stock initialisation, zero_init_residual
    model.train()
    check_autocast_edge_grads(model, torch.randn(4, 3, 64, 64), 'cpu',
                              torch.bfloat16)


def check_autocast_edge_grads(model, x, device, dtype):
    """A training step under ``dtype`` autocast gives float32 edge
    gradients within 2% (of each stage's largest) of the float32 step's."""

    def edge_grads(enabled):
        model.zero_grad()
        with torch.autocast(device, dtype=dtype, enabled=enabled):
            outs = model(x)
        assert {o.dtype for o in outs} == {dtype if enabled else torch.float32}
        sum((o.float()**2).mean() for o in outs).backward()
        return [s.edge_weights.grad.clone() for s in model.stage_graphs]

    reference = edge_grads(False)
    for stage, (got, ref) in enumerate(zip(edge_grads(True), reference)):
        assert got.dtype == torch.float32
        torch.testing.assert_close(
            got,
            ref,
            rtol=0,
            atol=0.02 * float(ref.abs().max()),
            msg=f'layer{stage + 1}')


def test_dot_of_any_two_layouts_is_the_sum_of_products():
    """Dense operands of one layout are read in place; a broadcast
    gradient (that of a ``.mean()``) or mixed layouts still give the exact
    sum of products."""
    from mmtopo.models.layers.edge_functions import _dot, _flat
    torch.manual_seed(0)
    a = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    b = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    expected = (a * b).sum()
    last = a.to(memory_format=torch.channels_last)
    assert _flat(last).data_ptr() == last.data_ptr()  # a view, no copy
    assert _flat(a.expand(2, 3, 4, 5)[:, :2]) is None
    broadcast = torch.tensor(0.5, dtype=torch.float64).expand(2, 3, 4, 5)
    cases = [(a, b), (last, b.to(memory_format=torch.channels_last)),
             (last, b), (a, b.to(memory_format=torch.channels_last))]
    for x, y in cases:
        torch.testing.assert_close(_dot(x, y), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        _dot(broadcast, b), 0.5 * b.sum(), rtol=1e-12, atol=0)


def test_is_compiling_falls_back_to_dynamo_before_torch_2_3():
    """torch 2.1 and 2.2 have no ``torch.compiler.is_compiling``: the check
    then asks ``torch._dynamo``, and a forward takes the path it names."""
    import types

    from mmtopo.models import layers as graph
    old_api = types.SimpleNamespace(compile=torch.compile)  # 2.1's names
    model = TopoResNet(
        depth=18,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='learnable', init='uniform'))
    x = torch.randn(2, 3, 32, 32)
    real = graph.StageGraph.forward_traceable
    with mock.patch.object(torch, 'compiler', old_api):
        # (torch 2.13's own torch._dynamo.is_compiling asks torch.compiler)
        with mock.patch('torch._dynamo.is_compiling', return_value=False):
            assert graph.is_compiling() is False
            with mock.patch.object(
                    graph.StageGraph,
                    'forward_traceable',
                    side_effect=AssertionError('traced')):
                eager = model(x)  # the eager path: nothing traced
        with mock.patch('torch._dynamo.is_compiling', return_value=True), \
                mock.patch.object(graph.StageGraph, 'forward_traceable',
                                  autospec=True, side_effect=real) as spy:
            assert graph.is_compiling() is True
            traced = model(x)
    assert spy.call_count == 4  # every stage took the traced path
    for a, b in zip(eager, traced):
        torch.testing.assert_close(a, b)


def test_fixed_weights_are_read_again_only_after_they_change():
    """A fixed wiring's weights are kept on the host between forwards, and
    read again after a write (a checkpoint load, an in-place change)."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=18,
        base_channels=4,
        stem_channels=8,
        topology=dict(type='complete')).eval()
    x = torch.randn(1, 3, 32, 32)
    before = model(x)[-1]
    stage = model.layer4
    with mock.patch.object(
            torch.Tensor, 'tolist', autospec=True,
            side_effect=torch.Tensor.tolist) as reads:
        torch.testing.assert_close(model(x)[-1], before)
    assert reads.call_count == 0
    with torch.no_grad():
        stage.edge_weights[0, 2] = 0.0  # node 1 alone feeds the output
    cut = model(x)[-1]
    assert not torch.allclose(cut, before)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['layer4.edge_weights'][0, 2] = 0.5
    model.load_state_dict(state)
    torch.testing.assert_close(model(x)[-1], before)


@pytest.mark.parametrize('name', ['custom_fixed', 'custom_learnable'])
def test_without_gradients_the_sums_skip_the_autograd_function(name):
    """Outside autograd (deployed inference) a node's sum is computed
    without :class:`WeightedSum`'s autograd node, and gives what the plain
    formula gives; a trace (the FLOP counter's) still goes through it."""
    torch.manual_seed(0)
    model = TopoResNet(depth=DEPTH, topology=TOPOLOGIES[name]).double().eval()
    random_signed_weights(model)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = naive_forward(model, x)
        with mock.patch.object(
                WeightedSum, 'apply', side_effect=AssertionError) as applied:
            outs = model(x)
    for out, want in zip(outs, expected):
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    assert applied.call_count == 0
    with torch.no_grad(), mock.patch.object(
            WeightedSum, 'apply', wraps=WeightedSum.apply) as traced_sums:
        torch.jit.trace(model, (x, ), check_trace=False)
    assert traced_sums.call_count > 0
