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
from pathlib import Path
from statistics import mean

from mmtopo.datasets import ensure_dataset
from mmtopo.experiments import TASKS, spread, train_and_score
from mmtopo.experiments.runs import REPO
from mmtopo.experiments.tables import print_table


def complexity(config: str, input_shape, part: str = 'model') -> tuple:
    """Parameters and FLOPs of the whole model, or of its backbone with
    ``part='backbone'`` (a detector's forward needs data samples), with
    the aggregations counted."""
    import torch
    from mmengine.analysis import parameter_count

    from mmtopo.apis import init_model
    from mmtopo.utils.complexity import count_flops

    _, model = init_model(str(REPO / config))
    stages = model.backbone.stage_graphs
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
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides for every run, as '
        'tools/train.py takes them')
    parser.add_argument(
        '--wirings',
        nargs='+',
        help='train only these of the task\'s wirings '
        '(default: all)')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='read the runs already finished in the work '
        'dir instead of training them again')
    args = parser.parse_args()
    task = TASKS[args.task]
    data = args.data or task.data
    wirings = args.wirings or list(task.configs)
    unknown = sorted(set(wirings) - set(task.configs))
    if unknown:
        parser.error(f'--wirings {unknown}: {args.task} has '
                     f'{list(task.configs)}')
    ensure_dataset(task.dataset, data)
    part = task.complexity_of
    lines = [
        f'| wiring | val {task.metric} (mean ± std, '
        f'{len(args.seeds)} seeds) | val per seed | test (mean ± std) '
        f'| test per seed | active edges | {part} params | {part} '
        'FLOPs | s/iter |', '| --- ' * 9 + '|'
    ]
    for name in wirings:
        config = task.configs[name]
        runs = []
        for seed in args.seeds:
            out = Path(args.work_dir) / args.task / f'{name}_seed{seed}'
            runs.append(
                train_and_score(
                    args.task,
                    config,
                    seed,
                    data,
                    out,
                    args.cfg_options,
                    reuse=args.reuse))
            print(name, seed, runs[-1], flush=True)
        values = [r['metric'] for r in runs]
        cost = ('-', '-')
        active = '-'
        if task.input_shape:
            params, flops, edges = complexity(config, task.input_shape, part)
            cost = (f'{params / 1e6:.3f} M', f'{flops / 1e6:.2f} M')
            counts = [r['active'] for r in runs if r['active'] is not None]
            active = (f'{mean(counts):.1f} / {edges}'
                      if counts else f'{edges} (fixed)')
        cells = [
            *spread(values), *spread([r['test'] for r in runs]), active, *cost,
            f'{mean(r["s_per_iter"] for r in runs):.3f}'
        ]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
