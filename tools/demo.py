"""make demo: the main workflow on the toy COCO set, on a CPU.

For the compute the stock ResNet-18 costs, is there a better detector?

1. the stock Faster R-CNN with a ResNet-18 trains for 8 epochs;
2. a TopoResNet with ResNet-34's layout at ResNet-18's widths, every block
   wired to every later one, learns its edges for 5 epochs under
   ``target_flops=dict(of=ResNet-18)``, is pruned to at most the stock
   backbone's FLOPs and fine-tuned for 3 epochs (the same 8 epochs);
3. both are scored with the COCO metric (pycocotools) on the held-out
   test split; the learned graph is printed and drawn; the deployed
   backbone's FLOPs, parameters and CPU inference time are measured
   against the stock ResNet-18's.

One seed: ``tools/analysis_tools/compare_equal_cost.py toy_detection``
runs the same over seeds, with the control arms (the learned graph from
scratch, a random sub-graph of the same cost, the dense supernet).

    python tools/demo.py [--work-dir work_dirs/demo] [--seed 0] [--reuse]
"""
import argparse
import sys
from pathlib import Path

from mmtopo.apis import init_model
from mmtopo.datasets import ensure_dataset
from mmtopo.experiments.equal_cost import EQUAL_COST_TASKS, EqualCostRuns
from mmtopo.experiments.pipeline import (deployment_report,
                                         reference_backbone_cfg)
from mmtopo.experiments.runs import last_checkpoint
from mmtopo.models import topology_backbone
from mmtopo.visualization import format_topology

TASK = EQUAL_COST_TASKS['toy_detection']


def learned_topology(runs: EqualCostRuns) -> str:
    """The supernet's edges at the end of the search, as text."""
    _, model = init_model(TASK.search, runs.search().checkpoint)
    _, backbone = topology_backbone(model)
    return format_topology(backbone.topology_graphs())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='read the runs already finished in the work dir instead of '
        'training them again')
    args = parser.parse_args()
    work_dir = Path(args.work_dir)

    if not (Path(TASK.data) / 'annotations' / 'test.json').exists():
        print(f'Generating the toy COCO set in {TASK.data} ...')
    ensure_dataset(TASK.dataset, TASK.data)
    runs = EqualCostRuns(TASK, args.seed, work_dir, reuse=args.reuse)
    print(
        f'[1/3] the stock ResNet-18 Faster R-CNN: {TASK.reference}',
        flush=True)
    stock = runs.stock()
    print(f'[2/3] search, prune, fine-tune: {TASK.search}', flush=True)
    learned = runs.learned()
    print('[3/3] the deployed backbone against the stock one', flush=True)
    config = work_dir / 'configs' / 'learned.py'
    checkpoint = last_checkpoint(work_dir / 'learned')
    report = deployment_report(
        str(config), checkpoint,
        reference_backbone_cfg(init_model(TASK.search)[0]), TASK.input_shape)

    print('\n=== The supernet\'s learned topology (edge i->j: weight; '
          '"." = pruned) ===')
    print(learned_topology(runs))
    _, deployed = init_model(str(config), checkpoint)
    removed = topology_backbone(deployed)[1].removed_blocks()
    print('blocks left without an active in-edge or out-edge, removed '
          f'from the deployed model: {removed or "none"}')
    print('\n=== COCO bbox mAP, each trained for 8 epochs ===')
    print(f'{"":>34s}  {"val":>6s}  {"test":>6s}  backbone FLOPs  params')
    for name, arm in (('stock ResNet-18', stock),
                      ('learned: searched, pruned, tuned', learned)):
        print(f'{name:>34s}  {arm["val"]:6.3f}  {arm["test"]:6.3f}  '
              f'{arm["flops"] / 1e9:8.4f} G    {arm["params"] / 1e6:.2f} M')
    print(f'\nDeployed backbone against the stock ResNet-18 (128x128): '
          f'FLOPs {report["flops_ratio"]:.3f}x, parameters '
          f'{report["params_ratio"]:.3f}x, CPU inference time '
          f'{report["time_ratio_b1"]:.2f}x at batch 1, '
          f'{report["time_ratio_b8"]:.2f}x at batch 8')
    print(f'Training backbone FLOPs against the stock run: '
          f'{learned["train_flops"] / stock["train_flops"]:.2f}x (the '
          'search trains the dense supernet)')
    picture = work_dir / 'search' / 'topology' / 'final.png'
    print(f'\nLearned topology picture: {picture}\n'
          f'Deployable model: {config}\n  checkpoint {checkpoint}\n'
          'One seed of a noisy comparison: see docs/results.md for the '
          'same over 5 seeds, with the control arms.')
    ok = (
        picture.exists() and stock['test'] > 0 and learned['test'] > 0
        and report['flops_ratio'] <= 1.0)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
