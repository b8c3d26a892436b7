"""Train one task with several wirings and seeds (same schedule) through
tools/train.py and print a results table (mean ± std of the metric, active
edges at the end, parameters, FLOPs, seconds per iteration).

The metric is read on the validation split, where settings are chosen, and,
for the toy detection tasks and ``digits_3way``, also on the held-out test
split (each run's last checkpoint through tools/test.py), which no setting
was chosen on.

    python tools/analysis_tools/compare_topologies.py digits --seeds 0 1 2
    python tools/analysis_tools/compare_topologies.py digits_3way
    python tools/analysis_tools/compare_topologies.py toy_detection --seeds 0 1
    python tools/analysis_tools/compare_topologies.py toy_detection_mobilenetv2
    python tools/analysis_tools/compare_topologies.py toy_detection_demo
    python tools/analysis_tools/compare_topologies.py digits --wirings dynamic

Not part of ``make test``: each run trains a model.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean, pstdev

from mmtopo.datasets import ensure_dataset
from mmtopo.utils.tables import print_table

REPO = Path(__file__).resolve().parents[2]


def toy_detection_task(**configs) -> dict:
    """A task on the toy COCO set: bbox mAP on val and the held-out test
    split, the backbone's costs at the set's 128x128."""
    return dict(configs=configs, metric='coco/bbox_mAP', data='data/toy_coco',
                dataset='toy_coco', input_shape=(3, 128, 128),
                complexity_of='backbone', test_split=True)


def schedule_options(epochs: int) -> list:
    """Options for a digits config trained ``epochs`` epochs: its length,
    its one validation and checkpoint at the end, its cosine period."""
    return [f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.T_max={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


DIGITS = dict(
    configs=dict(
        learnable='configs/cls/topo_resnet18_cifar_digits.py',
        residual='configs/cls/topo_resnet18_cifar_digits_residual.py',
        complete='configs/cls/topo_resnet18_cifar_digits_complete.py',
        random='configs/cls/topo_resnet18_cifar_digits_random.py',
        dynamic='configs/cls/topo_resnet18_cifar_digits_dynamic.py'),
    metric='accuracy/top1',
    data='data/digits',
    dataset='digits',
    input_shape=(3, 32, 32))

TASKS = dict(
    digits=DIGITS,
    # the digits split three ways (1079 / 359 / 359): scored on val and on
    # the held-out test split; 14 epochs of the smaller train split are
    # the two-way task's 230 iterations (238), same cosine shape
    digits_3way=dict(
        DIGITS, data='data/digits_3way', dataset='digits_3way',
        test_split=True,
        options=schedule_options(14)),
    toy_detection=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_r18_fpn_toy.py',
        residual='configs/toy/faster_rcnn_topo_r18_fpn_toy_residual.py',
        dynamic='configs/toy/faster_rcnn_topo_r18_fpn_toy_dynamic.py'),
    # the demo's model (TopoResNet-34 layout at half width, FLOPs budget
    # 0.8, no zero-init residuals) against its residual wiring
    toy_detection_demo=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_r34_fpn_toy_budget.py',
        residual='configs/toy/'
        'faster_rcnn_topo_r34_fpn_toy_budget_residual.py'),
    toy_detection_mobilenetv2=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_mobilenetv2_fpn_toy.py',
        residual='configs/toy/'
        'faster_rcnn_topo_mobilenetv2_fpn_toy_residual.py'),
)


def data_options(task: str, root: str):
    """Options pointing a task's configs at its data folder ``root`` (and,
    for the three-way digits, ``test_dataloader`` at the test split, which
    the configs alias to val), then the task's own options."""
    detection = TASKS[task]['dataset'] == 'toy_coco'
    root = root.rstrip('/') + ('/' if detection else '')
    opts = [f'{s}_dataloader.dataset.data_root={root}'
            for s in ('train', 'val', 'test')]
    if detection:
        opts += [f'{s}_evaluator.ann_file={root}annotations/{s}.json'
                 for s in ('val', 'test')]
    elif TASKS[task].get('test_split'):
        opts.append('test_dataloader.dataset.data_prefix=test')
    return opts + TASKS[task].get('options', [])


def last_checkpoint(work_dir: Path) -> str:
    return (work_dir / 'last_checkpoint').read_text().strip()


def score_on_test(task: str, config: str, checkpoint: str, data: str,
                  work_dir: Path, options=(), reuse: bool = False) -> float:
    """The metric of ``checkpoint`` on the config's test split, through
    tools/test.py (with ``reuse``, read from an earlier evaluation in
    ``work_dir`` if there is one)."""
    if not (reuse and list(work_dir.glob('*/*.json'))):
        subprocess.run(
            [sys.executable, 'tools/test.py', config, checkpoint,
             '--work-dir', str(work_dir), '--cfg-options',
             *data_options(task, data), *options],
            cwd=REPO, check=True, capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    log = sorted(work_dir.glob('*/*.json'))[-1]
    return json.loads(log.read_text().splitlines()[-1])[
        TASKS[task]['metric']]


def train(task, config, seed, data, work_dir: Path, options=(),
          reuse: bool = False) -> dict:
    """Train one run (or, with ``reuse``, read a finished run in
    ``work_dir``) and return its validation metric, its test metric if the
    task has a test split, speed and active edges."""
    if not (reuse and (work_dir / 'last_checkpoint').exists()):
        subprocess.run(
            [sys.executable, 'tools/train.py', config, '--work-dir',
             str(work_dir), '--cfg-options', f'randomness.seed={seed}',
             *data_options(task, data), *options],
            cwd=REPO, check=True, capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    log = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    train_rows = [r for r in rows if 'loss' in r]
    metric = TASKS[task]['metric']
    test = None
    if TASKS[task].get('test_split'):
        test = score_on_test(task, config, last_checkpoint(work_dir), data,
                             work_dir / 'test', options, reuse)
    return dict(metric=[r for r in rows if metric in r][-1][metric],
                test=test,
                s_per_iter=mean(r['time'] for r in train_rows[1:]),
                active=train_rows[-1].get('topo/active_edges'))


def spread(values) -> tuple:
    """``mean ± std`` and the per-seed list, or dashes for no values."""
    if not values or None in values:
        return '-', '-'
    return (f'{mean(values):.3f} ± {pstdev(values):.3f}',
            ', '.join(f'{v:.3f}' for v in values))


def complexity(config: str, input_shape, part: str = 'model') -> tuple:
    """Parameters and FLOPs of the whole model, or of its backbone with
    ``part='backbone'`` (a detector's forward needs data samples), with
    the aggregations counted."""
    import torch
    from mmengine.analysis import parameter_count
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from mmtopo.utils.complexity import count_flops

    cfg = Config.fromfile(str(REPO / config))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    stages = model.backbone.stages
    if part == 'backbone':
        model = model.backbone
    flops = count_flops(model, (torch.randn(1, *input_shape), ))
    # the edges the sparsity hook counts: those that learn, if any
    learning = [s for s in stages if s.learnable] or stages
    edges = sum(int(s.edge_mask.sum()) for s in learning)
    return parameter_count(model)[''], flops, edges


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--data', help='data folder (default: per task)')
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides for every run, as '
                        'tools/train.py takes them')
    parser.add_argument('--wirings', nargs='+',
                        help='train only these of the task\'s wirings '
                        '(default: all)')
    parser.add_argument('--reuse', action='store_true',
                        help='read the runs already finished in the work '
                        'dir instead of training them again')
    args = parser.parse_args()
    task = TASKS[args.task]
    data = args.data or task['data']
    wirings = args.wirings or list(task['configs'])
    unknown = sorted(set(wirings) - set(task['configs']))
    if unknown:
        parser.error(f'--wirings {unknown}: {args.task} has '
                     f'{list(task["configs"])}')
    ensure_dataset(task['dataset'], data)
    part = task.get('complexity_of', 'model')
    lines = [f'| wiring | val {task["metric"]} (mean ± std, '
             f'{len(args.seeds)} seeds) | val per seed | test (mean ± std) '
             f'| test per seed | active edges | {part} params | {part} '
             'FLOPs | s/iter |', '| --- ' * 9 + '|']
    for name in wirings:
        config = task['configs'][name]
        runs = []
        for seed in args.seeds:
            out = Path(args.work_dir) / args.task / f'{name}_seed{seed}'
            runs.append(train(args.task, config, seed, data, out,
                              args.cfg_options, reuse=args.reuse))
            print(name, seed, runs[-1], flush=True)
        values = [r['metric'] for r in runs]
        cost = ('-', '-')
        active = '-'
        if task['input_shape']:
            params, flops, edges = complexity(config, task['input_shape'],
                                              part)
            cost = (f'{params / 1e6:.3f} M', f'{flops / 1e6:.2f} M')
            counts = [r['active'] for r in runs if r['active'] is not None]
            active = (f'{mean(counts):.1f} / {edges}' if counts else
                      f'{edges} (fixed)')
        cells = [*spread(values), *spread([r['test'] for r in runs]),
                 active, *cost, f'{mean(r["s_per_iter"] for r in runs):.3f}']
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
