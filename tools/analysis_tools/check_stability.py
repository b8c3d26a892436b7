"""Does a TopoResNet train as stably as the stock ResNet under a stock recipe?

Trains, over several seeds and through the libraries' own ``tools/train.py``
(mmdet's or mmpretrain's, from the installed packages), three backbones on
one unmodified recipe: the stock ResNet, TopoResNet with the ``residual``
wiring, and TopoResNet ``learnable`` + ``EdgeSparsityHook``. Prints one row
per backbone: runs that diverged (a non-finite loss, a crash, or no metric),
the final metric, the range of the learned edge weights, and how far
training moved the edges and, for comparison, the norm layers' per-channel
scales from their initial values.

    python tools/analysis_tools/check_stability.py detection --seeds 0 1 2 3 4
    python tools/analysis_tools/check_stability.py cifar --seeds 0 1 2 3 4
    python tools/analysis_tools/check_stability.py detection --heads small \
        --backbones learnable --edge-lr-mult 10
    python tools/analysis_tools/check_stability.py detection --heads small \
        --backbones stock learnable --epochs 12   # mmdet's 1x schedule, whole

The recipes are config files (configs/stability/): ``detection``, mmdet's
``faster-rcnn_r50_fpn_1x_coco.py`` as it is with a depth-18 backbone from
scratch on the toy shapes set, 360 iterations, all inside the recipe's
500-iteration warm-up (``--epochs 12``: the whole 1x schedule, 1080
iterations; ``--heads small``: toy-sized FPN, RPN and box head);
``cifar``, mmpretrain's ``resnet18_8xb16_cifar10.py`` as it is on the
handwritten digits. Each run is that config with the backbone, the seed,
the length and, for the learnable run, the hook and the edges' optimizer
settings merged. Not part of ``make test``: each run trains a model
(about a minute here).
"""
import argparse
import copy
import importlib
from pathlib import Path
from statistics import mean
from typing import Optional

import torch
from mmengine.config import Config

from mmtopo.datasets import ensure_dataset
from mmtopo.experiments import mean_std, per_seed, print_table, train_run
from mmtopo.experiments.checkpoints import edge_range, edge_summary, last_state
from mmtopo.experiments.runs import REPO, library_train_py

STABILITY = REPO / 'configs' / 'stability'
TASKS = dict(
    detection=dict(
        configs=dict(
            stock=STABILITY / 'faster_rcnn_r18_fpn_1x_shapes.py',
            small=STABILITY / 'faster_rcnn_r18_fpn_1x_shapes_small_heads.py'),
        package='mmdet',
        metric='coco/bbox_mAP',
        data='data/toy_coco',
        dataset='toy_coco',
        epochs=4,
        backbones=dict(
            stock=dict(type='ResNet'),
            residual=dict(type='TopoResNet', topology=dict(type='residual')),
            learnable=dict(type='TopoResNet',
                           topology=dict(type='learnable')))),
    cifar=dict(
        configs=dict(stock=STABILITY / 'resnet18_8xb16_digits.py'),
        package='mmpretrain',
        metric='accuracy/top1',
        data='data/digits',
        dataset='digits',
        epochs=3,
        backbones=dict(
            stock=dict(type='ResNet_CIFAR'),
            residual=dict(
                type='TopoResNetCIFAR', topology=dict(type='residual')),
            learnable=dict(
                type='TopoResNetCIFAR', topology=dict(type='learnable')))),
)
HEADS = ('stock', 'small')


def data_overrides(task: str, data: str) -> dict:
    """The recipe's loaders (and, for detection, evaluators) pointed at
    ``data``."""
    detection = TASKS[task]['package'] == 'mmdet'
    root = str(Path(data).resolve()) + ('/' if detection else '')
    out = {
        f'{s}_dataloader': dict(dataset=dict(data_root=root))
        for s in ('train', 'val', 'test')
    }
    if detection:  # the recipe tests on val
        out.update({
            f'{s}_evaluator':
            dict(ann_file=root + 'annotations/val.json')
            for s in ('val', 'test')
        })
    return out


def render_config(task: str,
                  name: str,
                  seed: int,
                  data: str,
                  lambda_: float = 1e-2,
                  heads: str = 'stock',
                  edge_lr_mult: float = 1.0,
                  zero_init_residual: bool = True,
                  epochs: Optional[int] = None) -> Config:
    """The recipe with one backbone swapped in. Only the learnable run gets
    the hook and the edges' ``paramwise_cfg``; ``zero_init_residual=False``
    applies to every backbone, so the stock row stays comparable.
    ``epochs`` (90 iterations each; default: the task's) is the length of
    training: the recipe's own schedule (warm-up, decay milestones) runs
    unchanged over it, so mmdet's 1x schedule runs whole at 12."""
    spec = TASKS[task]
    if edge_lr_mult < 0:
        raise ValueError(f'edge_lr_mult must be >= 0, got {edge_lr_mult}')
    if heads not in HEADS:
        raise ValueError(f'heads must be one of {HEADS}, got {heads!r}')
    epochs = spec['epochs'] if epochs is None else epochs
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f'epochs must be a positive integer, got {epochs!r}')
    cfg = Config.fromfile(
        str(spec['configs'].get(heads, spec['configs']['stock'])))
    backbone = copy.deepcopy(spec['backbones'][name])
    if not zero_init_residual:
        backbone['zero_init_residual'] = False
    overrides = dict(
        data_overrides(task, data),
        randomness=dict(seed=seed),
        train_cfg=dict(max_epochs=epochs, val_interval=epochs),
        default_hooks=dict(checkpoint=dict(interval=epochs)))
    overrides['model'] = dict(backbone=backbone)
    cfg.merge_from_dict(overrides)
    if name == 'learnable':
        cfg.merge_from_dict(
            dict(
                optim_wrapper=dict(
                    paramwise_cfg=dict(custom_keys={
                        'edge_weights':
                        dict(lr_mult=edge_lr_mult, decay_mult=0.)
                    })),
                custom_hooks=[
                    dict(
                        type='EdgeSparsityHook', lambda_=lambda_, interval=10)
                ]))
    return cfg


def learned_vs_init(package: str, config: Path,
                    work_dir: Path) -> Optional[dict]:
    """How far training moved the backbone of the last checkpoint from its
    initial state: the edges' mean and largest ``|w - w0|`` (over the
    edges of the mask) and the norm layers' mean ``|gamma - gamma0|`` (over
    their channels). The per-channel scales are the yardstick of the edges'
    step (``edge_grad='rms'`` gives an edge the step noise of one gamma).
    The initial state is the run's backbone built and ``init_weights()``-ed
    afresh: in these recipes both are constants (norm weights 1, or 0 where
    ``zero_init_residual`` zeroes them; edges as the topology's ``init``),
    so the seed does not enter."""
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from torch.nn.modules.batchnorm import _BatchNorm

    import mmtopo  # noqa: F401  (registers the topology backbones)
    state = last_state(work_dir)
    if state is None:
        return None
    importlib.import_module(f'{package}.utils').register_all_modules()
    init_default_scope(package)
    registry = importlib.import_module(f'{package}.registry').MODELS
    backbone = registry.build(Config.fromfile(str(config)).model.backbone)
    # init_weights reports every tensor to the current logger: keep quiet
    MMLogger.get_instance('check_stability.init', log_level='WARNING')
    backbone.init_weights()
    gammas, edges = [], []
    for name, module in backbone.named_modules():
        if isinstance(module, _BatchNorm) and module.weight is not None:
            final = state[f'backbone.{name}.weight']
            gammas.append((final - module.weight.detach()).abs())
        mask = getattr(module, 'edge_mask', None)
        if mask is not None:
            final = state[f'backbone.{name}.edge_weights']
            edges.append((final - module.edge_weights.detach())[mask.bool()])
    moved = dict(gamma_mean=float(torch.cat(gammas).mean()))
    if edges:
        edges = torch.cat(edges).abs()
        moved.update(
            edge_mean=float(edges.mean()), edge_max=float(edges.max()))
    return moved


def run_one(task: str, name: str, seed: int, data: str, work_dir: Path,
            **recipe) -> dict:
    """Train one backbone of the recipe through the library's own
    tools/train.py; whether it diverged (a failed run, a non-finite loss
    or no metric), its metric, its largest loss, its edges and how far
    training moved them."""
    import math
    spec = TASKS[task]
    config = work_dir / f'{task}_{name}.py'
    work_dir.mkdir(parents=True, exist_ok=True)
    render_config(task, name, seed, data, **recipe).dump(str(config))
    run = train_run(
        str(config),
        work_dir,
        train_py=library_train_py(spec['package']),
        check=False)
    losses = run.values('loss')
    metric = run.last(spec['metric'])
    diverged = (
        run.returncode != 0 or metric is None
        or not all(math.isfinite(v) for v in losses))
    return dict(
        diverged=diverged,
        returncode=run.returncode,
        metric=metric or 0.0,
        max_loss=max(losses) if losses else float('nan'),
        edges=edge_range(work_dir) if name == 'learnable' else None,
        moved=learned_vs_init(spec['package'], config, work_dir))


def moved_summary(runs: list) -> str:
    """``edges <mean> (max <max>), gammas <mean>``: the runs' mean moves
    from init (:func:`learned_vs_init`), or ``-`` when no run has any."""
    moved = [r['moved'] for r in runs if r.get('moved')]
    if not moved:
        return '-'
    gammas = f'gammas {mean(m["gamma_mean"] for m in moved):.3f}'
    if 'edge_mean' not in moved[0]:
        return gammas
    return (f'edges {mean(m["edge_mean"] for m in moved):.3f} (max '
            f'{max(m["edge_max"] for m in moved):.3f}), {gammas}')


def summary_row(name: str, runs: list) -> str:
    values = [r['metric'] for r in runs]
    return (f'| {name} | {sum(r["diverged"] for r in runs)} / {len(runs)} | '
            f'{mean_std(values)} | {per_seed(values)} | '
            f'{edge_summary([r["edges"] for r in runs])} | '
            f'{moved_summary(runs)} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument(
        '--backbones',
        nargs='+',
        default=['stock', 'residual', 'learnable'],
        choices=['stock', 'residual', 'learnable'])
    parser.add_argument(
        '--lambda',
        dest='lambda_',
        type=float,
        default=1e-2,
        help='EdgeSparsityHook lambda_ of the learnable run')
    parser.add_argument(
        '--heads',
        choices=HEADS,
        default='stock',
        help="detection: mmdet's heads, or toy-sized ones "
        '(same optimizer and schedule, about 8x faster)')
    parser.add_argument(
        '--edge-lr-mult',
        type=float,
        default=1.0,
        help="the learnable run's edge lr_mult "
        '(paramwise_cfg)')
    parser.add_argument(
        '--no-zero-init-residual',
        dest='zero_init_residual',
        action='store_false',
        help='zero_init_residual=False for every backbone')
    parser.add_argument(
        '--epochs',
        type=int,
        help='length of training in epochs of 90 iterations '
        '(default: detection 4, cifar 3; the recipe\'s '
        'schedule unchanged, mmdet\'s 1x whole at 12)')
    parser.add_argument('--data', help='data folder (default: per task)')
    parser.add_argument('--work-dir', default='work_dirs/stability')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()
    spec = TASKS[args.task]
    data = args.data or spec['data']
    ensure_dataset(spec['dataset'], data)
    lines = [
        f'| backbone | diverged | {spec["metric"]} (mean ± std, '
        f'{len(args.seeds)} seeds) | per seed | learned edges: range, '
        'active ratio | moved from init: edges mean (max), norm '
        'weights mean |', '| --- ' * 6 + '|'
    ]
    for name in args.backbones:
        runs = []
        for seed in args.seeds:
            out = Path(args.work_dir) / args.task / f'{name}_seed{seed}'
            runs.append(
                run_one(
                    args.task,
                    name,
                    seed,
                    data,
                    out,
                    lambda_=args.lambda_,
                    heads=args.heads,
                    edge_lr_mult=args.edge_lr_mult,
                    zero_init_residual=args.zero_init_residual,
                    epochs=args.epochs))
            print(name, seed, runs[-1], flush=True)
        lines.append(summary_row(name, runs))
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
