"""compare_budgets.py: the options each run is trained with, and what its
table makes of diverged runs."""
import json
import sys

import torch

from mmtopo.experiments.runs import FINISHED
from tests.helpers import load_tool, run_tool

compare_budgets = load_tool('tools/analysis_tools/compare_budgets.py')


def test_run_config_user_options_reach_every_run_before_the_budget():
    spec = compare_budgets.TASKS['digits']
    user = ['model.backbone.zero_init_residual=False']
    config, options = compare_budgets.run_config(spec, 'residual', user)
    assert config == spec['residual']
    assert options == ['model.backbone.depth=34', *user]
    config, options = compare_budgets.run_config(spec, 'flops_0_85', user)
    assert config == spec['learnable']
    assert options[:2] == ['model.backbone.depth=34', *user]
    # the hook: the task's schedule, the budget's target, the other
    # budget cleared
    assert sorted(options[2:]) == sorted([
        'custom_hooks.0.target_ratio=None', 'custom_hooks.0.target_flops=0.85',
        'custom_hooks.0.lambda_=0.01', 'custom_hooks.0.begin=20',
        'custom_hooks.0.lambda_growth=1.03',
        'custom_hooks.0.flops_input_shape=(3,32,32)'
    ])
    _, dense = compare_budgets.run_config(spec, 'dense')
    assert 'custom_hooks.0.lambda_=0.0' in dense
    assert 'custom_hooks.0.lambda_growth=None' in dense


def test_user_options_on_the_sparsity_hook_are_refused_by_name(tmp_path):
    result = run_tool([
        sys.executable, 'tools/analysis_tools/compare_budgets.py', 'digits',
        '--work-dir',
        str(tmp_path), '--cfg-options', 'custom_hooks.0.lambda_=0.1',
        'train_cfg.max_epochs=2'
    ])
    assert result.returncode == 2
    assert ("--cfg-options ['custom_hooks.0.lambda_=0.1']: the sparsity "
            'hook (custom_hooks.0) is set by each budget') in result.stderr


def test_diverged_runs_are_counted_and_left_out_of_the_table(tmp_path):
    """Runs whose edges went NaN are not pruned or scored (there is no
    graph to prune): the table counts them per row."""
    data = tmp_path / 'digits'
    (data / 'val').mkdir(parents=True)  # no generation
    for seed in (0, 1):
        run = tmp_path / 'runs' / 'digits' / f'dense_seed{seed}'
        log = run / '20260101_000000' / 'vis_data' / 'scalars.json'
        log.parent.mkdir(parents=True)
        log.write_text('\n'.join(
            json.dumps(r) for r in [
                dict(loss=2.0, time=1.0),
                dict(loss=float('nan'), time=0.5), {
                    'accuracy/top1': 0.0
                }
            ]))
        weights = torch.ones(4, 4)
        weights[0, 1 + seed] = float('nan') if seed else float('inf')
        checkpoint = run / 'epoch_10.pth'
        torch.save(
            dict(
                state_dict={
                    'backbone.layer1.edge_weights': weights,
                    'backbone.layer1.edge_mask': torch.ones(
                        4, 4, dtype=torch.bool)
                }), checkpoint)
        (run / 'last_checkpoint').write_text(str(checkpoint))
        (run / FINISHED).write_text('')  # a run that ran to its end
        assert compare_budgets.non_finite_edges(
            str(checkpoint)) == ['backbone.layer1.edge_weights']
    table = tmp_path / 'table.txt'
    result = run_tool([
        sys.executable, 'tools/analysis_tools/compare_budgets.py', 'digits',
        '--seeds', '0', '1', '--runs', 'dense', '--reuse', '--data',
        str(data), '--work-dir',
        str(tmp_path / 'runs'), '--out',
        str(table)
    ],
                      check=True)
    assert ("dense 1: diverged (non-finite ['backbone.layer1.edge_weights'])"
            in result.stdout)
    header, _, row = table.read_text().splitlines()
    assert header.split(' | ')[1] == 'diverged'
    assert row == '| dense | 2 / 2 | ' + ' | '.join(['-'] * 7) + ' |'


def test_digits_3way_fine_tunes_half_its_schedule_on_the_same_runs():
    three, two = (compare_budgets.TASKS[t] for t in ('digits_3way', 'digits'))
    # the same runs and budget schedule; fine-tuning half of 14 epochs
    for key in ('learnable', 'residual', 'options', 'hook'):
        assert three[key] == two[key], key
    assert 'train_cfg.max_epochs=7' in three['finetune']
    assert 'param_scheduler.T_max=7' in three['finetune']
    assert 'train_cfg.max_epochs=5' in two['finetune']
    assert three['task'] == 'digits_3way'
