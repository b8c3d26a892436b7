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

``detection``: mmdet's ``faster-rcnn_r50_fpn_1x_coco.py`` as it is (SGD lr
0.02, its warm-up and schedule, no clipping) with a depth-18 backbone from
scratch, batch 2, on the toy shapes set at 160x160, 360 iterations, all
inside the recipe's 500-iteration warm-up (``--epochs 12``: the whole 1x
schedule, 1080 iterations; ``--heads small``: toy-sized FPN, RPN and box
head; optimizer, learning rate, warm-up, schedule and batch unchanged).
``cifar``: mmpretrain's ``resnet18_8xb16_cifar10.py`` as it is (SGD lr 0.1,
batch 16) on the handwritten digits at 32x32. Only the data, the length of
training and the backbone type change. Not part of ``make test``: each run
trains a model (about a minute here).
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean, pstdev
from typing import Optional

from mmtopo.datasets import ensure_dataset
from mmtopo.utils.tables import print_table

REPO = Path(__file__).resolve().parents[2]

DETECTION = """
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)
model = dict(
    backbone=dict({backbone}, depth=18, init_cfg=None, norm_eval=False,
                  frozen_stages=-1),
    neck=dict(in_channels=[64, 128, 256, 512]{neck}){heads})
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(160, 160), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')]
test_pipeline = [dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(160, 160), keep_ratio=True),
                 dict(type='LoadAnnotations', with_bbox=True),
                 dict(type='PackDetInputs', meta_keys=(
                     'img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor'))]
metainfo = dict(classes=('square', 'disk', 'triangle'))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{data}/', ann_file='annotations/train.json',
                 data_prefix=dict(img='train/'), metainfo=metainfo,
                 pipeline=pipeline, indices=180))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{data}/', ann_file='annotations/val.json',
                 data_prefix=dict(img='val/'), metainfo=metainfo,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='{data}/annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})  # x 90 iterations
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval={epochs}, max_keep_ckpts=1))
randomness = dict(seed={seed})
{extra}
"""

CIFAR = """
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)
model = dict(backbone=dict({backbone}, depth=18){heads})
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=32),
            dict(type='RandomCrop', crop_size=32, padding=4),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=32),
                 dict(type='PackInputs')]
data_preprocessor = dict(num_classes=10, mean=[127.5] * 3, std=[127.5] * 3,
                         to_rgb=False)
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}',
                 data_prefix='train', pipeline=pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}',
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})  # x 90 iterations
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval={epochs}, max_keep_ckpts=1))
randomness = dict(seed={seed})
{extra}
"""

# Toy-sized heads (--heads small): a 64-channel FPN and RPN, 256-d box head
# FCs and 128 sampled RoIs instead of mmdet's 256 / 1024 / 512, which cost
# about 2 s an iteration on 2 CPU cores. The optimizer, learning rate,
# warm-up, schedule and batch stay mmdet's.
SMALL_HEADS = """,
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128)))"""
HEADS = dict(stock=dict(neck='', heads=''),
             small=dict(neck=', out_channels=64', heads=SMALL_HEADS))

LEARNABLE_EXTRA = """
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{
    'edge_weights': dict(lr_mult={edge_lr_mult}, decay_mult=0.)}}))
custom_hooks = [dict(type='EdgeSparsityHook', lambda_={lambda_},
                     interval=10)]
"""

TASKS = dict(
    detection=dict(
        template=DETECTION, package='mmdet', metric='coco/bbox_mAP',
        data='data/toy_coco', epochs=4,
        backbones=dict(
            stock="type='ResNet'",
            residual="type='TopoResNet', topology=dict(type='residual')",
            learnable="type='TopoResNet', topology=dict(type='learnable')")),
    cifar=dict(
        template=CIFAR, package='mmpretrain', metric='accuracy/top1',
        data='data/digits', epochs=3,
        backbones=dict(
            stock="type='ResNet_CIFAR'",
            residual="type='TopoResNetCIFAR', topology=dict(type='residual')",
            learnable="type='TopoResNetCIFAR', "
            "topology=dict(type='learnable')")),
)


def library_train_py(package: str) -> Path:
    """The installed library's own tools/train.py (shipped under .mim)."""
    module = __import__(package)
    return Path(module.__file__).parent / '.mim' / 'tools' / 'train.py'


def last_state(work_dir: Path) -> Optional[dict]:
    """The model state dict of the run's last ``epoch_N.pth`` (by N), or
    None if the run saved none."""
    import torch

    import mmtopo  # noqa: F401  (allow-lists mmengine checkpoint types)
    ckpts = sorted(work_dir.glob('epoch_*.pth'),
                   key=lambda path: int(path.stem.split('_')[1]))
    if not ckpts:
        return None
    return torch.load(ckpts[-1], map_location='cpu')['state_dict']


def edge_range(work_dir: Path):
    """(min, max, active ratio) of the edges in the last checkpoint."""
    import torch

    state = last_state(work_dir)
    if state is None:
        return None
    values = torch.cat([
        w[state[k.replace('edge_weights', 'edge_mask')].bool()]
        for k, w in state.items() if k.endswith('edge_weights')])
    return (float(values.min()), float(values.max()),
            float((values != 0).float().mean()))


def render_config(task: str, name: str, seed: int, data: str,
                  lambda_: float = 1e-2, heads: str = 'stock',
                  edge_lr_mult: float = 1.0,
                  zero_init_residual: bool = True,
                  epochs: Optional[int] = None) -> str:
    """The recipe with one backbone swapped in. Only the learnable run gets
    the hook and the edges' ``paramwise_cfg``; ``zero_init_residual=False``
    applies to every backbone, so the stock row stays comparable.
    ``epochs`` (90 iterations each; default: the task's) is the length of
    training: the recipe's own schedule (warm-up, decay milestones) runs
    unchanged over it, so mmdet's 1x schedule runs whole at 12."""
    spec = TASKS[task]
    if edge_lr_mult < 0:
        raise ValueError(f'edge_lr_mult must be >= 0, got {edge_lr_mult}')
    epochs = spec['epochs'] if epochs is None else epochs
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f'epochs must be a positive integer, got {epochs!r}')
    extra = LEARNABLE_EXTRA.format(
        lambda_=lambda_, edge_lr_mult=edge_lr_mult) \
        if name == 'learnable' else ''
    backbone = spec['backbones'][name]
    if not zero_init_residual:
        backbone += ', zero_init_residual=False'
    return spec['template'].format(
        backbone=f'dict({backbone})', seed=seed, epochs=epochs,
        data=os.path.abspath(data), extra=extra,
        **(HEADS[heads] if task == 'detection' else HEADS['stock']))


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
    import importlib

    import torch
    from mmengine.config import Config
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
        moved.update(edge_mean=float(edges.mean()),
                     edge_max=float(edges.max()))
    return moved


def run_one(task: str, name: str, seed: int, data: str, work_dir: Path,
            **recipe) -> dict:
    spec = TASKS[task]
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / f'{task}_{name}.py'
    config.write_text(render_config(task, name, seed, data, **recipe))
    proc = subprocess.run(
        [sys.executable, str(library_train_py(spec['package'])),
         str(config), '--work-dir', str(work_dir)],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    (work_dir / 'train_output.log').write_text(proc.stdout + proc.stderr)
    rows = []
    logs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if logs:
        rows = [json.loads(line) for line in logs[-1].read_text().split('\n')
                if line.strip()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    metrics = [r[spec['metric']] for r in rows if spec['metric'] in r]
    finite = all(math.isfinite(v) for v in losses)
    diverged = proc.returncode != 0 or not finite or not metrics
    return dict(diverged=diverged, returncode=proc.returncode,
                metric=metrics[-1] if metrics else 0.0,
                max_loss=max(losses) if losses else float('nan'),
                edges=edge_range(work_dir) if name == 'learnable' else None,
                moved=learned_vs_init(spec['package'], config, work_dir))


def edge_summary(runs: list, digits: int = 3) -> str:
    """``[min, max], active <ratio>`` of the runs' learned edges
    (:func:`edge_range`), or ``-`` when no run has any."""
    edges = [r['edges'] for r in runs if r['edges']]
    if not edges:
        return '-'
    return (f'[{min(e[0] for e in edges):.{digits}f}, '
            f'{max(e[1] for e in edges):.{digits}f}], active '
            f'{mean(e[2] for e in edges):.2f}')


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
            f'{mean(values):.3f} ± {pstdev(values):.3f} | '
            f'{", ".join(f"{v:.3f}" for v in values)} | '
            f'{edge_summary(runs)} | {moved_summary(runs)} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--backbones', nargs='+',
                        default=['stock', 'residual', 'learnable'],
                        choices=['stock', 'residual', 'learnable'])
    parser.add_argument('--lambda', dest='lambda_', type=float, default=1e-2,
                        help='EdgeSparsityHook lambda_ of the learnable run')
    parser.add_argument('--heads', choices=sorted(HEADS), default='stock',
                        help="detection: mmdet's heads, or toy-sized ones "
                        '(same optimizer and schedule, about 8x faster)')
    parser.add_argument('--edge-lr-mult', type=float, default=1.0,
                        help="the learnable run's edge lr_mult "
                        '(paramwise_cfg)')
    parser.add_argument('--no-zero-init-residual', dest='zero_init_residual',
                        action='store_false',
                        help='zero_init_residual=False for every backbone')
    parser.add_argument('--epochs', type=int,
                        help='length of training in epochs of 90 iterations '
                        '(default: detection 4, cifar 3; the recipe\'s '
                        'schedule unchanged, mmdet\'s 1x whole at 12)')
    parser.add_argument('--data', help='data folder (default: per task)')
    parser.add_argument('--work-dir', default='work_dirs/stability')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()
    spec = TASKS[args.task]
    data = args.data or spec['data']
    ensure_dataset('digits' if args.task == 'cifar' else 'toy_coco', data)
    lines = [f'| backbone | diverged | {spec["metric"]} (mean ± std, '
             f'{len(args.seeds)} seeds) | per seed | learned edges: range, '
             'active ratio | moved from init: edges mean (max), norm '
             'weights mean |', '| --- ' * 6 + '|']
    for name in args.backbones:
        runs = []
        for seed in args.seeds:
            out = Path(args.work_dir) / args.task / f'{name}_seed{seed}'
            runs.append(run_one(
                args.task, name, seed, data, out, lambda_=args.lambda_,
                heads=args.heads, edge_lr_mult=args.edge_lr_mult,
                zero_init_residual=args.zero_init_residual,
                epochs=args.epochs))
            print(name, seed, runs[-1], flush=True)
        lines.append(summary_row(name, runs))
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
