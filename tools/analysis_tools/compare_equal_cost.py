"""At the stock model's cost, is the learned wiring better? The five arms
of :mod:`mmtopo.experiments.equal_cost` (stock reference, learned + pruned
+ fine-tuned, the pruned graph from scratch, a random sub-graph at the
same FLOPs, the dense supernet), each trained for the reference's number
of iterations, over several seeds; every metric on the held-out test
split (settings were chosen on val), with the backbone FLOPs, parameters
and training time against the stock reference (``--time-inference``: and
the backbones' CPU inference time).

    python tools/analysis_tools/compare_equal_cost.py toy_detection_hard \\
        --seeds 0 1 2 3 4 --out work_dirs/equal_cost/toy_detection_hard.md
    python tools/analysis_tools/compare_equal_cost.py digits --arms stock \\
        learned

Not part of ``make test``: each arm trains a model (digits about a minute,
the toy detection sets a few minutes each on 2 cores).
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import DictAction

from mmtopo.datasets import ensure_dataset
from mmtopo.experiments.equal_cost import (ARMS, EQUAL_COST_TASKS,
                                           EqualCostRuns, arms_table,
                                           with_search_options)
from mmtopo.experiments.tables import print_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(EQUAL_COST_TASKS))
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument(
        '--arms',
        nargs='+',
        default=list(ARMS),
        choices=ARMS,
        help='the arms to run (stock always '
        'runs: the others are measured against it)')
    parser.add_argument(
        '--search-cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='key=value overrides of the search config (every arm but '
        'stock derives from it), e.g. '
        'custom_hooks.0.target_flops.ratio=1.01')
    parser.add_argument(
        '--time-inference',
        action='store_true',
        help="also time each arm's backbone against the stock one's (CPU, "
        'eval mode, batch 1 and 8)')
    parser.add_argument('--work-dir', default='work_dirs/equal_cost')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='read the runs already finished in the work '
        'dir instead of training them again')
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds lists a seed twice: {args.seeds}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    task = EQUAL_COST_TASKS[args.task]
    ensure_dataset(task.dataset, task.data)
    arms = ['stock'] + [a for a in args.arms if a != 'stock']
    results = {arm: [] for arm in arms}
    root = Path(args.work_dir) / args.task
    task = with_search_options(task, args.search_cfg_options,
                               root / 'search_config.py')
    for seed in args.seeds:
        runs = EqualCostRuns(task, seed, root / f'seed{seed}', args.reuse,
                             args.time_inference)
        for arm in arms:
            results[arm].append(runs.run(arm))
            print(args.task, seed, arm, results[arm][-1], flush=True)
    (root / 'results.json').write_text(json.dumps(results, indent=1))
    print_table(arms_table(results, task.metric), args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
