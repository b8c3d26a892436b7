"""compare_topologies.py: what it reads from finished runs and what its
table says. Training the runs is not part of the suite; ``--reuse`` reads
runs laid out as tools/train.py leaves them."""
import json
import sys

import torch
from mmdet.models.backbones import ResNet
from mmengine.analysis import parameter_count

from mmtopo.experiments.runs import FINISHED
from mmtopo.utils.complexity import count_flops
from tests.helpers import run_tool


def finished_run(work_dir, metric, active, times, test_metric):
    """A run directory as tools/train.py leaves it: the scalars log (train
    rows, then the validation metric), ``last_checkpoint`` and the marker
    of a run that finished; and, under
    ``test/``, the log tools/test.py leaves of its last checkpoint scored on
    the held-out split."""
    log = work_dir / '20260101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    extra = {} if active is None else {'topo/active_edges': active}
    rows = [dict(loss=1.0, time=t, **extra) for t in times]
    rows.append({'coco/bbox_mAP': metric})
    log.write_text('\n'.join(json.dumps(r) for r in rows))
    (work_dir / 'last_checkpoint').write_text('epoch_8.pth')
    (work_dir / FINISHED).write_text('')
    test_log = work_dir / 'test' / '20260102_000000' / '20260102_000000.json'
    test_log.parent.mkdir(parents=True)
    test_log.write_text(json.dumps({'coco/bbox_mAP': test_metric}))


def test_reuse_tabulates_finished_runs_with_backbone_costs(tmp_path):
    data = tmp_path / 'toy_coco'
    (data / 'annotations').mkdir(parents=True)
    for split in ('train', 'val', 'test'):  # no generation
        (data / 'annotations' / f'{split}.json').write_text('{}')
    runs = tmp_path / 'runs' / 'toy_detection'
    # the first iteration's time is warm-up and left out of s/iter
    for seed, (m_learn, active, m_res) in enumerate([(0.9, 10, 0.7),
                                                     (0.8, 9, 0.8),
                                                     (0.85, 11, 0.9)]):
        finished_run(
            runs / f'learnable_seed{seed}',
            m_learn,
            active, [9.0, 0.2, 0.4],
            test_metric=m_learn - 0.1)
        finished_run(
            runs / f'residual_seed{seed}',
            m_res,
            None, [9.0, 0.1, 0.3],
            test_metric=0.5 + 0.1 * seed)
    table = tmp_path / 'table.txt'
    run_tool([
        sys.executable, 'tools/analysis_tools/compare_topologies.py',
        'toy_detection', '--work-dir',
        str(tmp_path / 'runs'), '--data',
        str(data), '--reuse', '--out',
        str(table), '--wirings', 'learnable', 'residual'
    ],
             check=True)
    header, _, learnable, residual = table.read_text().splitlines()
    assert header.split(' | ')[1:8] == [
        'val coco/bbox_mAP (mean ± std, 3 seeds)', 'val per seed',
        'test (mean ± std)', 'test per seed', 'active edges',
        'backbone params', 'backbone FLOPs'
    ]
    learnable, residual = learnable.split(' | '), residual.split(' | ')
    # mean ± population std of the seeds and each seed, on val (the
    # training run's last validation) and on test (tools/test.py's log of
    # the last checkpoint); s/iter after warm-up
    assert learnable[:5] == [
        '| learnable', '0.850 ± 0.041', '0.900, 0.800, 0.850', '0.750 ± 0.041',
        '0.800, 0.700, 0.750'
    ]
    assert residual[:5] == [
        '| residual', '0.800 ± 0.082', '0.700, 0.800, 0.900', '0.600 ± 0.082',
        '0.500, 0.600, 0.700'
    ]
    assert learnable[-1] == '0.300 |' and residual[-1] == '0.200 |'
    # ResNet-18 has 4 stages of 2 blocks: 3 learnable edges each, 2 in the
    # residual chain; the mean of the runs' last active-edge counts
    assert learnable[5] == '10.0 / 12' and residual[5] == '8 (fixed)'
    # the residual wiring costs exactly the stock ResNet-18 backbone; the
    # learnable one has 12 edge scalars and its sums on top
    stock = ResNet(depth=18)
    flops = count_flops(stock, (torch.randn(1, 3, 128, 128), ))
    params = parameter_count(stock)['']
    assert residual[6:8] == [f'{params / 1e6:.3f} M', f'{flops / 1e6:.2f} M']
    assert learnable[6] == residual[6]
    assert float(learnable[7][:-2]) > float(residual[7][:-2])


def test_unknown_wiring_is_named_with_the_tasks_wirings(tmp_path):
    result = run_tool([
        sys.executable, 'tools/analysis_tools/compare_topologies.py',
        'toy_detection', '--work-dir',
        str(tmp_path), '--wirings', 'dynamic', 'dense'
    ])
    assert result.returncode == 2
    assert ("--wirings ['dense']: toy_detection has ['learnable', "
            "'residual', 'dynamic']") in result.stderr


def test_digits_3way_tests_on_the_held_out_split_and_keeps_val():
    """The digits configs alias test_dataloader to val; the three-way task
    points only the test loader at ``test`` (val stays where settings are
    chosen) and trains 14 epochs, the two-way task's iteration count."""
    from mmengine.config import Config

    from mmtopo.apis import parse_cfg_options
    from mmtopo.experiments import TASKS, data_options

    def merged(task):
        cfg = Config.fromfile(TASKS[task].configs['learnable'])
        cfg.merge_from_dict(
            parse_cfg_options(data_options(TASKS[task], f'data/{task}')))
        return cfg

    three, two = merged('digits_3way'), merged('digits')
    assert [
        three[f'{s}_dataloader'].dataset.data_prefix
        for s in ('train', 'val', 'test')
    ] == ['train', 'val', 'test']
    assert [
        two[f'{s}_dataloader'].dataset.data_prefix
        for s in ('train', 'val', 'test')
    ] == ['train', 'val', 'val']
    assert three.train_dataloader.dataset.data_root == 'data/digits_3way'
    # 1079 / 64 -> 17 iterations an epoch, x14 = 238; two-way 23 x 10 = 230
    assert (three.train_cfg.max_epochs, three.param_scheduler.T_max) == (14,
                                                                         14)
    assert (two.train_cfg.max_epochs, two.param_scheduler.T_max) == (10, 10)
