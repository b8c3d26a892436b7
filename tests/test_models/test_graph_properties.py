"""Property tests of the stage graph against the plain formula.

Hypothesis draws the stage: its length, a random DAG, which blocks are
removed, the edge weights (exact zeros, ones and negatives among them), the
mode (train / eval), ``with_cp``, ``edge_grad`` and the backward path of
the fan-outs (stacked, as on a GPU, or not, as on CPU). Each example
compares :class:`StageGraph` (fused aggregation, sums recomputed in
backward, zero and unit shortcuts) and its traceable path with the
formula written here in float64 from the same blocks:

* ``y_0 = block_0(x)``; node ``j`` is live when one of its in-edges has a
  non-zero weight and a live source; ``y_j = block_j(sum_i w_ij y_i)`` when
  live, else nothing (0) and its block is not run;
* the stage output is ``sum_i w_in y_i`` over the in-edges of node ``n``,
  constant zero (no gradient) if the output node is not live either;
* an edge's gradient is ``<dL/dx_j, y_i>`` times :func:`edge_grad_scale`;
  outside training a zero edge is not there (no gradient reaches it).

And that the graph exported at threshold 0 (``export_topology``) computes
the same function in eval mode.

``HYPOTHESIS_PROFILE=thorough`` runs ten times the examples of the fast
suite (e.g. before a change to the aggregation).
"""
import functools
import math
import os
from typing import Optional
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmdet.models.backbones.resnet import BasicBlock

from mmtopo.models import TopoResNet
from mmtopo.models.layers import EDGE_GRADS, StageGraph, stacked_fan_out
from mmtopo.models.topology import build_stage_topology
from tests.helpers import as_if_compiling

settings.register_profile(
    'fast',
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    'thorough',
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'fast'))

CHANNELS = 3
WEIGHTS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0]),
    st.floats(-2.0, 2.0, allow_nan=False, width=32))


@st.composite
def stage_graphs(draw, blocks: Optional[int] = None, removals: int = 2):
    """``(blocks, edges, weights, removed)`` of a valid stage of ``blocks``
    (default: 1 to 6) blocks: every kept node but the first has an input,
    every kept node but the last an output, removed blocks have no edges."""
    if blocks is None:
        blocks = draw(st.integers(1, 6))
    last = blocks
    removed = sorted(
        draw(st.sets(st.integers(1, last - 1), max_size=removals)
             ) if last > 1 and removals else set())
    kept = [k for k in range(last + 1) if k not in removed]
    edges = {(i, j)
             for j in kept[1:]
             for i in kept if i < j and draw(st.booleans())}
    for j in kept[1:]:  # repair, as the random graphs do
        if not any(e[1] == j for e in edges):
            edges.add((max(i for i in kept if i < j), j))
    for i in kept[:-1]:
        if not any(e[0] == i for e in edges):
            edges.add((i, last))
    edges = sorted(edges)
    weights = [draw(WEIGHTS) for _ in edges]
    return blocks, edges, weights, removed


def make_stage(blocks,
               edges,
               weights,
               removed,
               learnable,
               with_cp,
               edge_grad,
               seed=0):
    torch.manual_seed(seed)
    topo = build_stage_topology(
        dict(
            type='custom',
            edges=edges,
            weights=weights,
            learnable=learnable,
            removed=removed,
            # the drawn zeros may cut the stage: its formula is checked too
            allow_cut=True),
        blocks,
        0)
    modules = [
        BasicBlock(CHANNELS, CHANNELS, with_cp=with_cp) for _ in range(blocks)
    ]
    stage = StageGraph(modules, topo, edge_grad=edge_grad).double()
    vary_norms(stage)
    return stage


def vary_norms(stage):
    """Norms that are not the identity (drawn from the global seed)."""
    with torch.no_grad():
        for m in stage.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def plain_formula(stage, x):
    """The stage output by the formula of StageGraph's docstring."""
    w, values = stage.edge_weights, stage.edge_weights.detach()
    last = len(stage)
    ys = {0: stage[0](x)}
    for j in range(1, last + 1):
        ins = [i for i in ys if stage.edge_mask[i, j]]
        if not stage.training:
            ins = [i for i in ins if values[i, j] != 0]
        if not any(values[i, j] != 0 for i in ins):
            if j == last:  # the stage is cut apart: constant zero
                return torch.zeros_like(ys[0])
            continue  # not live: not run, feeds nothing
        total = sum((w[i, j] * ys[i] for i in ins), torch.zeros_like(ys[0]))
        if j == last:
            return total
        ys[j] = stage[j](total)
    raise AssertionError('unreachable')


def run(stage, forward, x, seed=1):
    stage.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    out = forward(x)
    gen = torch.Generator().manual_seed(seed)
    if out.requires_grad:  # not when zero edges cut the stage apart
        (out * torch.randn(out.shape, generator=gen,
                           dtype=out.dtype)).sum().backward()
    grads = {
        n: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
        for n, p in stage.named_parameters()
    }
    grads['input'] = x.grad.clone() if x.grad is not None else \
        torch.zeros_like(x)
    return out.detach(), grads


def traced(stage):

    def forward(x):
        with as_if_compiling():
            return stage(x)

    return forward


def check_stage(blocks,
                edges,
                weights,
                removed,
                learnable,
                training,
                with_cp,
                edge_grad,
                path='fused',
                channels_last=False,
                stacked=True):
    """Outputs and every gradient of ``path`` against the formula, with
    the fan-outs' gradients ``stacked`` or not (:func:`stacked_fan_out`)."""
    stage = make_stage(blocks, edges, weights, removed, learnable, with_cp,
                       edge_grad)
    stage.train(training)
    x = torch.randn(
        2,
        CHANNELS,
        5,
        5,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(2))
    if channels_last:
        stage = stage.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    want_out, want = run(stage, lambda inp: plain_formula(stage, inp), x)
    forward = stage if path == 'fused' else traced(stage)
    with stacked_fan_out(stacked):
        got_out, got = run(stage, forward, x)
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


CASES = dict(
    graph=stage_graphs(),
    learnable=st.booleans(),
    training=st.booleans(),
    with_cp=st.booleans(),
    edge_grad=st.sampled_from(EDGE_GRADS))


@given(**CASES, channels_last=st.booleans(), stacked=st.booleans())
def test_fused_stage_is_the_formula(graph, learnable, training, with_cp,
                                    edge_grad, channels_last, stacked):
    check_stage(
        *graph,
        learnable,
        training,
        with_cp,
        edge_grad,
        channels_last=channels_last,
        stacked=stacked)


@given(**CASES)
def test_traceable_stage_is_the_formula(graph, learnable, training, with_cp,
                                        edge_grad):
    check_stage(
        *graph, learnable, training, with_cp, edge_grad, path='traceable')


def _weights_as_ones(inputs, weights):
    return sum(inputs[1:], inputs[0].clone())


def _recompute_ignoring_weights(packed):
    if isinstance(packed, torch.Tensor):
        return packed
    inputs, _ = packed
    return sum(inputs[1:], inputs[0].clone())


def _unflat_ignoring_layout(flat, like):
    return flat.view(like.shape)


def _index_in_order(columns, device):
    return torch.arange(len(columns), device=device)


def _stack_reversed(grads, source):
    rows = [g.reshape(-1) for g in grads]
    return torch.stack(rows[::-1])


def _dot_of_sums(a, b):
    return a.sum() * b.sum()


# A stage whose nodes sum inputs of weights that are not 1, and whose
# sources feed several consumers, adjacent (node 0: nodes 1-3; node 2:
# nodes 3, 4) and not (node 1: nodes 2, 4), so the stacked backward runs
# where it is on
PLANTED_CASE = (4, [(0, 1), (0, 2), (1, 2), (0, 3), (2, 3), (1, 4), (3, 4),
                    (2, 4)], [0.5, -1.5, 0.7, 1.3, -0.4, 0.9, 0.6, 0.8], [])
EDGE_FUNCTIONS = 'mmtopo.models.layers.edge_functions'
# name: (what is replaced, by what, channels_last, stacked)
PLANTED_BUGS = {
    'weights treated as 1': ('weighted_sum', _weights_as_ones, False, True),
    'weights treated as 1 (unstacked)':
    ('weighted_sum', _weights_as_ones, False, False),
    'the recompute ignoring weights':
    ('_unpack', _recompute_ignoring_weights, False, True),
    'stacked gradients read in the wrong layout':
    ('_unflat', _unflat_ignoring_layout, True, True),
    'the wrong weights of non-adjacent consumers':
    ('index_tensor', _index_in_order, False, True),
    'stacked gradients out of order': ('_stack_flat', _stack_reversed, False,
                                       True),
    'unstacked edge gradients of the wrong reduction': ('_dot', _dot_of_sums,
                                                        False, False),
}


@pytest.mark.parametrize('bug', sorted(PLANTED_BUGS))
def test_the_properties_catch_planted_bugs(bug):
    """The property check fails on each planted bug."""
    name, replacement, channels_last, stacked = PLANTED_BUGS[bug]
    check = functools.partial(
        check_stage,
        *PLANTED_CASE,
        True,
        True,
        False,
        'sum',
        channels_last=channels_last,
        stacked=stacked)
    check()  # right as it is
    with mock.patch(f'{EDGE_FUNCTIONS}.{name}', replacement):
        with pytest.raises(AssertionError):
            check()


# ResNet-34's stages: 3, 4, 6 and 3 blocks
STAGE_BLOCKS = (3, 4, 6, 3)


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(data=st.data())
def test_an_exported_pruned_graph_computes_the_same_function(data):
    specs = []
    for blocks in STAGE_BLOCKS:
        _, edges, weights, _ = data.draw(stage_graphs(blocks, removals=0))
        # the drawn zeros may cut a stage: export must say so
        specs.append(
            dict(
                type='custom',
                edges=edges,
                weights=weights,
                learnable=True,
                allow_cut=True))
    torch.manual_seed(0)
    model = TopoResNet(
        depth=34, base_channels=2, stem_channels=4,
        topology=specs).double().eval()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    try:
        pruned_specs = model.export_topology(0.0)
    except ValueError as err:  # zeros cut a stage apart: said so, and
        assert 'cuts every path' in str(err)  # the dense output is zero
        assert any(not s.connects_input_to_output()
                   for s in model.stage_graphs)
        return
    pruned = TopoResNet(
        depth=34,
        base_channels=2,
        stem_channels=4,
        topology=[dict(s, learnable=False)
                  for s in pruned_specs]).double().eval()
    own = pruned.state_dict()
    state = {
        k: v
        for k, v in model.state_dict().items() if k in own and 'edge_' not in k
    }
    state.update({k: v for k, v in own.items() if 'edge_' in k})
    pruned.load_state_dict(state, strict=True)
    with torch.no_grad():
        for a, b in zip(pruned(x), model(x)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    kept = sum(len(s['edges']) for s in pruned_specs)
    nonzero = sum(sum(w != 0 for w in s['weights']) for s in specs)
    assert kept <= nonzero
