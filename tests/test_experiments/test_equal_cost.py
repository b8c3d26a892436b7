"""The pieces of the equal-cost comparison: the random sub-graph at a
FLOPs budget, and the pipeline from a search checkpoint to the pruned and
the fine-tuning configs."""
import numpy as np
import pytest
import torch
from mmdet.models import ResNet
from mmengine.config import Config

from mmtopo.experiments.equal_cost import (EQUAL_COST_TASKS, schedule_of,
                                           with_search_options)
from mmtopo.experiments.pipeline import (finetune_config, prune_checkpoint,
                                         reference_backbone_cfg,
                                         search_budget_flops,
                                         search_budget_params)
from mmtopo.experiments.random_subgraph import random_subgraph, subgraph_specs
from mmtopo.models import TopoResNet
from mmtopo.utils.complexity import BackboneCosts, count_flops
from tests.helpers import REPO

SMALL = dict(depth=18, base_channels=4, stem_channels=4, out_indices=(3, ))
X = torch.zeros(1, 3, 32, 32)


def supernet():
    torch.manual_seed(0)
    return TopoResNet(
        **SMALL,
        stage_blocks=(3, 4, 6, 3),
        topology=dict(type='learnable', init='uniform'))


def test_a_random_subgraph_meets_the_budget_and_keeps_every_stage():
    """Blocks go at random until the FLOPs are at most the budget
    (ResNet-18's, for a ResNet-34 layout), within one block of it; the
    graph, built, costs what the cost model says, or less where a fixed
    unit edge passes its input on; two seeds draw two graphs."""
    model = supernet()
    costs = BackboneCosts(model, (3, 32, 32))
    budget = count_flops(ResNet(**SMALL), (X, ))
    assert costs.total > budget
    largest_block = max(f for blocks in costs.blocks
                        for k, f in blocks.items() if k > 0)
    edges = sum(e * int(s.edge_mask.sum())
                for e, s in zip(costs.edge, model.stage_graphs))
    drawn = []
    for seed in (0, 1):
        graphs = random_subgraph(model.topology_graphs(), costs, budget,
                                 np.random.default_rng(seed))
        assert budget - largest_block - edges < costs.flops(graphs) <= budget
        built = TopoResNet(
            **SMALL,
            stage_blocks=(3, 4, 6, 3),
            topology=subgraph_specs(graphs))
        assert all(s.connects_input_to_output() for s in built.stage_graphs)
        assert count_flops(built, (X, )) <= costs.flops(graphs)
        drawn.append([tuple(s['edges']) for s in subgraph_specs(graphs)])
    assert drawn[0] != drawn[1]


def test_a_random_subgraph_meets_a_parameter_budget_too():
    """With ``max_params`` (the search had a parameter target) blocks go
    until both budgets hold: at ResNet-18's FLOPs and 0.7 of its
    parameters the draw is at most both, within one block of the binding
    one, and the graph, built as deployed, holds what the cost model
    says."""
    from mmengine.analysis import parameter_count
    model = supernet()
    costs = BackboneCosts(model, (3, 32, 32))
    flops = count_flops(ResNet(**SMALL), (X, ))
    params = 0.7 * parameter_count(ResNet(**SMALL))['']
    largest = max(p for blocks in costs.block_params
                  for k, p in blocks.items() if k > 0)
    for seed in (0, 1, 2):
        graphs = random_subgraph(
            model.topology_graphs(),
            costs,
            flops,
            np.random.default_rng(seed),
            max_params=params)
        assert costs.flops(graphs) <= flops
        assert params - largest < costs.params(graphs) <= params
        built = TopoResNet(
            **SMALL,
            stage_blocks=(3, 4, 6, 3),
            topology=subgraph_specs(graphs))
        assert parameter_count(built)[''] == costs.params(graphs)


def test_subgraph_specs_weigh_each_input_by_one_over_its_in_degree():
    model = supernet()
    graphs = model.topology_graphs()
    spec = subgraph_specs(graphs)[0]  # layer1, complete on 4 nodes
    assert spec['edges'] == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert spec['weights'] == [1.0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]
    assert spec['learnable'] is False and 'removed' not in spec


def test_random_subgraph_says_when_the_budget_cannot_be_met():
    model = supernet()
    costs = BackboneCosts(model, (3, 32, 32))
    with pytest.raises(
            ValueError,
            match='no sub-graph of these stages '
            'reaches 1 FLOPs: with every block removed it '
            'costs'):
        random_subgraph(model.topology_graphs(), costs, 1.0,
                        np.random.default_rng(0))
    with pytest.raises(
            ValueError,
            match=r'no sub-graph of these stages reaches \d+ FLOPs and 1 '
            'parameters: with every block removed it costs'):
        random_subgraph(
            model.topology_graphs(),
            costs,
            costs.total,
            np.random.default_rng(0),
            max_params=1.0)


def test_the_pipeline_prunes_a_search_checkpoint_and_fine_tunes_from_it(
        tmp_path):
    """The digits search config: its checkpoint (edges set as if learned)
    prunes to a fixed graph that computes the same function, and the
    fine-tuning config is the pruned one with finetune_cfg merged and
    load_from the pruned checkpoint."""
    from mmtopo.apis import init_model
    task = EQUAL_COST_TASKS['digits']
    config = str(REPO / task.search)
    cfg, model = init_model(config)
    torch.manual_seed(0)
    with torch.no_grad():
        for stage in model.backbone.stage_graphs:
            stage.edge_weights.uniform_(-1, 1).mul_(stage.edge_mask)
            stage.edge_weights[0, -1] = 0.0  # prune a skip of every stage
    ckpt = tmp_path / 'search.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    pruned_cfg, pruned_ckpt = prune_checkpoint(config, str(ckpt),
                                               tmp_path / 'pruned')
    _, pruned = init_model(pruned_cfg, pruned_ckpt)
    model.eval()
    pruned.eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(pruned.extract_feat(x), model.extract_feat(x))
    tuned = Config.fromfile(
        finetune_config(pruned_cfg, cfg.finetune_cfg.to_dict(), pruned_ckpt,
                        tmp_path / 'finetune.py'))
    assert tuned.load_from == pruned_ckpt
    assert tuned.train_cfg.max_epochs == 5
    assert tuned.optim_wrapper.optimizer.lr == 0.0283
    assert all(not s['learnable'] for s in tuned.model.backbone.topology)
    assert not any(h['type'] == 'EdgeSparsityHook' for h in tuned.custom_hooks)


@pytest.mark.parametrize('name', sorted(EQUAL_COST_TASKS))
def test_every_arm_trains_as_many_iterations_as_the_reference(name):
    """Search + fine-tune epochs are the reference's, and the search
    budget is the reference's backbone."""
    task = EQUAL_COST_TASKS[name]
    reference = Config.fromfile(str(REPO / task.reference))
    search = Config.fromfile(str(REPO / task.search))
    assert search.train_cfg.max_epochs + \
        search.finetune_cfg.train_cfg.max_epochs == \
        reference.train_cfg.max_epochs
    assert search.train_dataloader.batch_size == \
        reference.train_dataloader.batch_size
    assert schedule_of(
        str(REPO / task.reference
            ))['train_cfg']['max_epochs'] == reference.train_cfg.max_epochs
    ref = dict(reference.model.backbone)
    ref.pop('_scope_', None)
    budget = reference_backbone_cfg(search)
    assert {k: ref[k] for k in budget} == budget


def test_search_options_reach_the_search_config_and_the_random_budget(
        tmp_path):
    """compare_equal_cost.py --search-cfg-options: the search config every
    arm but stock derives from gets them; here a budget of 1.01x the
    reference's FLOPs, which the random arm's draw is held to as well
    (the stock ResNet-18's count at the task's input, times 1.01)."""
    from tests.helpers import load_tool
    tool = load_tool('tools/analysis_tools/compare_equal_cost.py')
    args = tool.parse_args([
        'toy_detection', '--search-cfg-options',
        'custom_hooks.0.target_flops.ratio=1.01'
    ])
    assert args.search_cfg_options == {
        'custom_hooks.0.target_flops.ratio': 1.01
    }
    task = EQUAL_COST_TASKS['toy_detection']
    assert with_search_options(task, {}, tmp_path / 'unused.py') is task
    slack = with_search_options(task, args.search_cfg_options,
                                tmp_path / 'search.py')
    assert slack.search == str(tmp_path / 'search.py')
    assert slack.reference == task.reference
    search = Config.fromfile(str(REPO / task.search))
    merged = Config.fromfile(slack.search)
    assert merged.custom_hooks[0].target_flops.ratio == 1.01
    assert reference_backbone_cfg(merged) == reference_backbone_cfg(search)
    stock = count_flops(
        ResNet(depth=18), (torch.zeros(1, *task.input_shape), ))
    assert search_budget_flops(search, task.input_shape) == stock
    assert search_budget_flops(merged, task.input_shape) == stock * 1.01


def test_a_parameter_target_reaches_the_random_arms_budget(tmp_path):
    """``--search-cfg-options custom_hooks.0.target_params=...``: the
    random arm is drawn within the reference's parameters as well (the
    stock ResNet_CIFAR-18's count); the shipped searches budget FLOPs
    only."""
    from mmengine.analysis import parameter_count
    from mmpretrain.models import ResNet_CIFAR
    task = EQUAL_COST_TASKS['digits']
    search = Config.fromfile(str(REPO / task.search))
    assert search_budget_params(search) is None
    reference = reference_backbone_cfg(search)
    held = Config.fromfile(
        with_search_options(task, {
            'custom_hooks.0.target_params': dict(of=reference)
        }, tmp_path / 'search.py').search)
    stock = ResNet_CIFAR(depth=18, base_channels=16, out_indices=(3, ))
    assert search_budget_params(held) == parameter_count(stock)['']
    halved = Config.fromfile(
        with_search_options(
            task, {
                'custom_hooks.0.target_params': dict(of=reference, ratio=0.5)
            }, tmp_path / 'halved.py').search)
    assert search_budget_params(halved) == 0.5 * parameter_count(stock)['']


def _row(test, flops, params, seconds, **extra):
    return dict(
        val=test,
        test=test,
        train_seconds=seconds,
        iters=400,
        train_flops=flops * 400,
        flops=flops,
        params=params,
        **extra)


def test_the_arms_table_reads_ratios_against_the_stock_arm():
    """Means over seeds against the stock arm's; inference columns (each
    seed's median ratio, their range) only when every row was timed."""
    from mmtopo.experiments.equal_cost import arms_table
    results = dict(
        stock=[_row(0.5, 100., 10., 20.),
               _row(0.7, 100., 10., 20.)],
        learned=[_row(0.6, 90., 12., 30.),
                 _row(0.8, 90., 12., 30.)])
    lines = arms_table(results, 'm')
    assert len(lines) == 4 and lines[1] == '| --- ' * 9 + '|'
    assert lines[3] == ('| learned | 0.700 ± 0.100 | 0.600, 0.800 | '
                        '0.700 ± 0.100 | 0.9000x | 1.200x | 400 | 0.90x | '
                        '1.50x |')
    for rows, ratios in ((results['stock'], (1.0, 1.02)), (results['learned'],
                                                           (1.31, 1.05))):
        for row, r in zip(rows, ratios):
            row.update(time_ratio_b1=r, time_ratio_b8=r / 2)
    timed = arms_table(results, 'm')
    assert timed[0].endswith('| inference vs stock, batch 1 | batch 8 |')
    assert timed[1] == '| --- ' * 11 + '|'
    assert timed[3].endswith('| 1.50x | 1.05-1.31x | 0.53-0.66x |')


def test_a_timed_arm_is_timed_against_the_stock_backbone(
        tmp_path, monkeypatch):
    """--time-inference: the arm's backbone (here the digits supernet,
    densified as the dense arm is) and the stock reference's backbone go
    to the timing, at the task's input; the ratios land in the row."""
    from mmpretrain.models import ResNet_CIFAR

    from mmtopo.experiments import equal_cost
    from mmtopo.experiments.runs import Run
    from mmtopo.models import TopoResNetCIFAR
    task = EQUAL_COST_TASKS['digits']
    seen = {}

    def fake_ratios(model, reference, input_shape):
        seen.update(model=model, reference=reference, shape=input_shape)
        return {1: dict(ratio=1.25), 8: dict(ratio=0.75)}

    monkeypatch.setattr(equal_cost, 'inference_ratios', fake_ratios)
    monkeypatch.setattr(equal_cost, 'test_metrics',
                        lambda *args, **kwargs: {task.metric: 97.0})
    (tmp_path / 'last_checkpoint').write_text('unused.pth')
    run = Run(tmp_path, 0, [{
        'step': 10,
        'loss': 1.0,
        'time': 0.5
    }, {
        task.metric: 96.0
    }])
    runs = equal_cost.EqualCostRuns(task, 0, tmp_path, time_inference=True)
    row = runs.scored(str(REPO / task.search), run, dense=True)
    assert row['time_ratio_b1'] == 1.25 and row['time_ratio_b8'] == 0.75
    assert row['test'] == 97.0 and row['val'] == 96.0
    assert isinstance(seen['model'], TopoResNetCIFAR)
    assert all(
        bool((s.edge_weights == s.edge_mask.float()).all())
        for s in seen['model'].stage_graphs)
    assert type(seen['reference']) is ResNet_CIFAR
    assert seen['shape'] == task.input_shape
    untimed = equal_cost.EqualCostRuns(task, 0, tmp_path).scored(
        str(REPO / task.search), run)
    assert 'time_ratio_b1' not in untimed
