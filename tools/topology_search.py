"""From a supernet config to a deployable model at a reference's cost, in
one command: search (train the supernet under its FLOPs budget), prune the
learned graph, fine-tune the fixed pruned graph, evaluate it on the
held-out test split, and measure it against the reference backbone.

    python tools/topology_search.py \\
        configs/equal_cost/faster_rcnn_topo_r34to18_fpn_toy_hard.py \\
        --work-dir work_dirs/search_toy_hard

The config is a learnable-topology config whose ``EdgeSparsityHook`` has
``target_flops=dict(of=<reference backbone>)`` and which holds a
``finetune_cfg`` (merged into the pruned config to fine-tune it). Writes
``WORK_DIR/search``, ``pruned`` (the deployable config and checkpoint
before fine-tuning), ``finetune`` (the deployable model after it) and
``summary.json``.
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import Config

from mmtopo.experiments.pipeline import (deployment_report, finetune_config,
                                         prune_checkpoint,
                                         reference_backbone_cfg,
                                         sparsity_hook_cfg)
from mmtopo.experiments.runs import test_metrics, train_run
from mmtopo.utils.validation import check_output_dir


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the supernet (search) config')
    parser.add_argument(
        '--work-dir',
        required=True,
        help='folder for the three runs and the summary')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help='randomness.seed of both trainings (default: '
        "the config's)")
    parser.add_argument(
        '--rounds',
        type=int,
        default=15,
        help='timed rounds of the inference comparison')
    return parser.parse_args(argv)


def check_search_config(parser_error, config: str) -> Config:
    """The config must say what to prune to and how to fine-tune."""
    cfg = Config.fromfile(config)
    hook = sparsity_hook_cfg(cfg)
    if hook is None:
        parser_error(f'{config}: has no EdgeSparsityHook in custom_hooks, '
                     'so nothing would be learned to prune')
    if reference_backbone_cfg(cfg) is None:
        parser_error(f'{config}: its EdgeSparsityHook has target_flops='
                     f"{hook.get('target_flops')!r}; the search needs "
                     'target_flops=dict(of=<reference backbone config>)')
    if 'finetune_cfg' not in cfg:
        parser_error(f'{config}: has no finetune_cfg (the schedule to '
                     'fine-tune the pruned graph with)')
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = check_search_config(
        lambda msg: sys.exit(f'topology_search.py: error: {msg}'), args.config)
    if args.rounds < 1:
        sys.exit(f'topology_search.py: error: --rounds must be >= 1, got '
                 f'{args.rounds}')
    try:
        check_output_dir('--work-dir', args.work_dir)
    except ValueError as err:
        sys.exit(f'topology_search.py: error: {err}')
    work_dir = Path(args.work_dir)
    hook = sparsity_hook_cfg(cfg)
    print(f'[1/4] search: {args.config}', flush=True)
    search = train_run(args.config, work_dir / 'search', seed=args.seed)
    print(f'[2/4] prune: {search.checkpoint}', flush=True)
    pruned_cfg, pruned_ckpt = prune_checkpoint(args.config, search.checkpoint,
                                               work_dir / 'pruned')
    tuned = finetune_config(pruned_cfg, cfg.finetune_cfg.to_dict(),
                            pruned_ckpt, work_dir / 'finetune.py')
    print(f'[3/4] fine-tune: {tuned}', flush=True)
    run = train_run(tuned, work_dir / 'finetune', seed=args.seed)
    print(f'[4/4] evaluate on the test split: {run.checkpoint}', flush=True)
    metrics = test_metrics(tuned, run.checkpoint,
                           work_dir / 'finetune' / 'test')
    report = deployment_report(tuned, run.checkpoint,
                               reference_backbone_cfg(cfg),
                               hook.get('flops_input_shape', (3, 224, 224)),
                               args.rounds)
    summary = dict(
        config=tuned, checkpoint=run.checkpoint, test=metrics, **report)
    (work_dir / 'summary.json').write_text(json.dumps(summary, indent=1))
    print(f'\nDeployable model: {tuned}\n  checkpoint {run.checkpoint}')
    print('Test split: ' +
          ', '.join(f'{k} {v:.4f}'
                    for k, v in metrics.items() if isinstance(v, float)))
    print(f"Backbone against the reference "
          f"({reference_backbone_cfg(cfg)['type']}): FLOPs "
          f"{report['flops'] / 1e9:.4f} G ({report['flops_ratio']:.4f}x), "
          f"parameters {report['params'] / 1e6:.3f} M "
          f"({report['params_ratio']:.3f}x), CPU inference time "
          f"{report['time_ratio_b1']:.3f}x at batch 1, "
          f"{report['time_ratio_b8']:.3f}x at batch 8")
    return 0


if __name__ == '__main__':
    sys.exit(main())
