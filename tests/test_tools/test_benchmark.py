"""The benchmark tools: what they compute and print (not how fast anything
is: timings do not belong in the suite)."""
import json
import sys

import pytest
import torch
from mmdet.models.backbones import ResNet

from mmtopo.models import TopoResNet
from mmtopo.models.layers import stacked_fan_out, stacks_gradients
from mmtopo.utils.benchmark import count_ops, interleaved_times, ratio_stats
from tests.helpers import REPO, load_tool, run_tool


def test_ratio_stats_are_per_round_ratios():
    base = [1.0, 2.0, 1.0, 4.0, 1.0]
    times = [1.1, 2.0, 1.3, 4.4, 1.2]  # ratios 1.1 1.0 1.3 1.1 1.2
    stats = ratio_stats(times, base)
    assert stats['time'] == 1.3  # median time
    assert stats['ratio'] == pytest.approx(1.1)  # not 1.3 / 1.0
    # sorted ratios 1.0 1.1 1.1 1.2 1.3: quartiles as numpy's percentiles
    assert (stats['q1'], stats['q3']) == pytest.approx((1.1, 1.2))
    # two rounds: the quartiles stay between the two ratios measured
    two = ratio_stats([1.0, 8.0], [1.0, 1.0])
    assert (two['q1'], two['q3']) == pytest.approx((2.75, 6.25))
    assert ratio_stats([2.0], [1.0]) == dict(
        time=2.0, ratio=2.0, q1=2.0, q3=2.0)


def test_interleaved_times_take_turns_after_warmup():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in 'ab'}
    times = interleaved_times(steps, rounds=3, warmup=2, device='cpu')
    assert calls == ['a', 'b'] * 5
    assert {k: len(v) for k, v in times.items()} == {'a': 3, 'b': 3}


def test_benchmark_backbone_prints_ratios_to_the_stock_resnet(tmp_path):
    out = tmp_path / 'result.json'
    proc = run_tool([
        sys.executable, 'tools/analysis_tools/benchmark_backbone.py',
        '--depth', '18', '--batch-size', '2', '--img-size', '64', '--iters',
        '2', '--warmup', '1', '--topology', 'learnable', 'complete',
        '--channels-last', '--json',
        str(out)
    ],
                    check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('torch ') and 'threads' in lines[0]
    assert 'ResNet-18, batch 2, 64x64, eager, channels_last, float32' in \
        lines[0]
    rows = [line for line in lines if line.startswith('| ')]
    assert [r.split(' | ')[0]
            for r in rows[2:]] == ['| stock', '| learnable', '| complete']
    results = json.loads(out.read_text())['results']
    assert results['stock']['train']['ratio'] == 1.0
    assert results['stock']['mem_ratio'] == 1.0
    assert results['learnable']['peak_mem'] > 0
    # a learnable stage of 2 blocks has a 3x3 edge parameter; fixed
    # wirings keep their edges in buffers
    assert results['learnable']['params'] == results['stock']['params'] + 36
    assert results['complete']['params'] == results['stock']['params']
    # the aggregation's multiply-adds are counted: more FLOPs than stock
    assert results['complete']['flops_ratio'] > 1.0
    # ops per train step: the learnable graph adds one edge gradient per
    # edge (3 in each of the four stages of two blocks), one stack and one
    # 1 / sqrt(C) scale for the backbone's edge gradients, and the one host
    # read's concatenation. In channels_last the gradients reaching the
    # output nodes come in another layout, so those 8 edges take a
    # multiply and a sum instead of one dot.
    assert results['stock']['ops_ratio'] == 1.0
    assert results['learnable']['ops'] == results['stock']['ops'] + \
        (4 + 2 * 8) + 2 + 1


def test_benchmark_backbone_takes_the_fan_out_path_it_is_given(tmp_path):
    """By device, ops are counted on the GPU's path (stacked) even on a
    CPU; ``--fan-out unstacked`` counts (and times) the CPU's."""
    ops = {}
    described = dict(device='stacked off the CPU', unstacked='not stacked')
    for path, words in described.items():
        out = tmp_path / f'{path}.json'
        proc = run_tool([
            sys.executable, 'tools/analysis_tools/benchmark_backbone.py',
            '--depth', '18', '--batch-size', '2', '--img-size', '64',
            '--iters', '1', '--warmup', '1', '--no-memory', '--topology',
            'complete', '--fan-out', path, '--json',
            str(out)
        ],
                        check=True)
        assert f'fan-out gradients {words};' in proc.stdout.splitlines()[0]
        results = json.loads(out.read_text())['results']
        ops[path] = results['complete']['ops'] - results['stock']['ops']
        assert results['stock']['ops'] == 188
    # per stage of 2 blocks: the output node's sum (mul, add_) and node
    # 1's one scaled gradient (mul); node 0's two gradients are stacked
    # and take one mv (GPU), or are added (CPU)
    assert ops == dict(device=4 * (3 + 2), unstacked=4 * (3 + 1))


def test_benchmark_backbone_compares_other_families_with_their_stock(tmp_path):
    out = tmp_path / 'result.json'
    proc = run_tool([
        sys.executable, 'tools/analysis_tools/benchmark_backbone.py',
        '--backbone', 'mobilenet_v2', '--batch-size', '2', '--img-size', '64',
        '--iters', '2', '--warmup', '1', '--no-memory', '--topology',
        'residual', 'learnable', '--json',
        str(out)
    ],
                    check=True)
    setup = next(line for line in proc.stdout.splitlines()
                 if line.startswith('torch '))
    assert 'MobileNetV2, batch 2, 64x64' in setup
    assert 'ratios against the stock MobileNetV2' in proc.stdout
    results = json.loads(out.read_text())['results']
    # the residual wiring is the stock network, to the multiply-add
    assert results['residual']['flops_ratio'] == 1.0
    assert results['residual']['params'] == results['stock']['params']
    # learnable stages of 2, 3, 4, 3 and 3 blocks: (n+1)^2 edge weights
    # each; the one-block layer1 and layer7 keep a fixed edge (a buffer)
    assert results['learnable']['params'] == results['stock']['params'] + \
        9 + 16 + 25 + 16 + 16
    assert results['learnable']['peak_mem'] is None


@pytest.mark.parametrize('family',
                         ['cspnext', 'csp_darknet', 'swin', 'convnext'])
def test_benchmark_backbone_builds_the_modern_families_as_their_stock(family):
    """The rows compare like with like: the residual wiring has the stock
    backbone's parameters, and the learnable one adds (n+1)^2 edge weights
    for each stage of n blocks."""
    import argparse
    tool = load_tool('tools/analysis_tools/benchmark_backbone.py')
    args = argparse.Namespace(backbone=family, depth=50, arch=None)
    count = {
        name: sum(p.numel() for p in tool.build(name, args).parameters())
        for name in ('stock', 'residual', 'learnable')
    }
    assert count['residual'] == count['stock']
    learnable = tool.build('learnable', args)
    blocks = [len(stage) for stage in learnable.stage_graphs]
    assert count['learnable'] == count['stock'] + sum(
        (n + 1)**2 for n in blocks if n > 1)


def test_benchmark_detector_times_two_configs_on_one_batch(tmp_path):
    toy = REPO / 'configs/toy/faster_rcnn_topo_r18_fpn_toy.py'
    residual = REPO / 'configs/toy/faster_rcnn_topo_r18_fpn_toy_residual.py'
    out = tmp_path / 'result.json'
    proc = run_tool([
        sys.executable, 'tools/analysis_tools/benchmark_detector.py',
        str(residual),
        str(toy), '--img-size', '64', '--iters', '2', '--warmup', '1',
        '--num-classes', '3', '--json',
        str(out)
    ],
                    check=True)
    rows = [
        line for line in proc.stdout.splitlines()
        if line.startswith('| A: ') or line.startswith('| B: ')
    ]
    assert rows[0].startswith(f'| A: {residual} | ')
    assert rows[1].startswith(f'| B: {toy} | ')
    result = json.loads(out.read_text())
    assert result['a']['ratio'] == 1.0 and result['b']['time'] > 0
    assert result['args']['img_size'] == 64


def train_step_ops(model, x):

    def step():
        sum(o.mean() for o in model(x)).backward()

    model.train()
    step()  # the first step allocates the gradients
    model.zero_grad(set_to_none=True)
    return count_ops(step)


# ResNet-50: stages of 3, 4, 6, 3 blocks, 6 + 10 + 21 + 6 = 43 edges; the
# ops beyond the stock step's with the fan-outs' gradients stacked, as on a
# GPU (where the count stands for kernel launches)
EXTRA_OPS = {
    'residual': {},
    # one dot per edge; one stack of all stages' edge gradients and one
    # multiplication by their 1 / sqrt(C) scales (edge_grad='rms'), for the
    # whole backbone (EdgeGradients); one concatenation for the single host
    # read of all stages' weights (fixed wirings read theirs once: the
    # residual one adds no op)
    'learnable': {
        'dot': 43,
        'stack': 1,
        'mul_': 1,
        'cat': 1
    },
    # the weighted sums and their recompute in backward (add_, mul); the
    # 12 sources with two or more non-zero out-edges (all but the last of
    # each stage) stack their gradients once and take the gradient they
    # send back and their edge gradients as one mv each; the last source of
    # each stage feeds only the output node: one dot
    'learnable_uniform': {
        'add_': 42,
        'mul': 24,
        'stack': 12 + 1,
        'mv': 2 * 12,
        'dot': 4,
        'mul_': 1,
        'cat': 1
    },
    # fixed weights, read to the host once: the sums, and one stack and one
    # mv for the gradient each of the 12 sources sends back
    'complete': {
        'add_': 42,
        'mul': 24,
        'stack': 12,
        'mv': 12
    },
}
# On CPU (not stacked) those 12 sources sum the 39 gradients they receive
# in place instead: a first multiply (8) or, where the first weight is 1
# (node 0 into node 1), an add of the first two (4), then add_ for the
# rest (39 - 8 - 2 * 4 = 23); every edge takes a dot for its gradient
UNSTACKED_EXTRA_OPS = {
    'residual': {},
    'learnable': EXTRA_OPS['learnable'],
    'learnable_uniform': {
        'add_': 42 + 23,
        'mul': 24 + 8,
        'add': 4,
        'stack': 1,
        'dot': 43,
        'mul_': 1,
        'cat': 1
    },
    'complete': {
        'add_': 42 + 23,
        'mul': 24 + 8,
        'add': 4
    },
}


@pytest.mark.parametrize(
    'stacked', [True, False], ids=['stacked (GPU)', 'unstacked (CPU)'])
@pytest.mark.parametrize('name', sorted(EXTRA_OPS))
def test_op_count_of_a_train_step_is_pinned(name, stacked):
    """The ATen ops one ResNet-50 train step (batch 2, 64x64, forward, a
    loss over all outputs, backward) dispatches beyond the stock
    ResNet-50's in the same norm mode: a count is deterministic, so any
    op the aggregation gains shows up here by name. Ratios to stock (466
    ops), stacked: 1.099x (learnable), 1.234x (learnable_uniform), 1.193x
    (complete); unstacked: 1.099x, 1.315x, 1.217x."""
    topology = dict(
        residual=dict(type='residual'),
        learnable=dict(type='learnable', init='residual'),
        learnable_uniform=dict(type='learnable', init='uniform'),
        complete=dict(type='complete'))[name]
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(0)
    stock = train_step_ops(ResNet(depth=50, norm_eval=False), x)
    with stacked_fan_out(stacked):
        topo = train_step_ops(
            TopoResNet(depth=50, norm_eval=False, topology=topology), x)
    expected = EXTRA_OPS if stacked else UNSTACKED_EXTRA_OPS
    assert dict(topo - stock) == expected[name]
    assert dict(stock - topo) == {}  # nothing of the stock step goes missing


def test_fan_outs_stack_their_gradients_off_the_cpu_only():
    """The path is chosen by the device unless forced (stacked_fan_out)."""
    assert not stacks_gradients(torch.device('cpu'))
    assert stacks_gradients(torch.device('cuda', 0))
    with stacked_fan_out(True):
        assert stacks_gradients(torch.device('cpu'))
        with stacked_fan_out(False):
            assert not stacks_gradients(torch.device('cuda'))
        assert stacks_gradients(torch.device('cpu'))
    assert not stacks_gradients(torch.device('cpu'))
    x = torch.randn(2, 3, 64, 64)
    model = TopoResNet(depth=50, topology=dict(type='complete'))
    assert 'mv' not in train_step_ops(model, x)  # CPU by default
