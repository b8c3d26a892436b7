"""Which part of the learnable wiring costs or buys accuracy: ablations.

Trains mmpretrain's ``resnet18_8xb16_cifar10.py`` recipe (SGD lr 0.1,
momentum 0.9, weight decay 5e-4, batch 16; its 200-epoch step schedule
scaled to ``--epochs``, decays at 1/2 and 3/4) on the handwritten digits at
32x32, split three ways, for several seeds per row. Rows: the stock
``ResNet_CIFAR`` and TopoResNetCIFAR-18 ``learnable`` variants, each
changing one or two things against the defaults (with the stability
recipe's lambda 1e-2). Every run is scored on the validation split (where
settings are chosen) and on the held-out test split (where none was
chosen). Each run goes through the library's own ``tools/train.py`` and
``tools/test.py``.

    python tools/analysis_tools/ablate_edges.py --seeds 0 1 2 3 4 \
        --out work_dirs/ablate/digits.md

Not part of ``make test``: a 10-epoch run takes about 3 minutes here.
"""
import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mmengine.config import Config

from mmtopo.datasets import ensure_dataset
from mmtopo.experiments import (mean_std, per_seed, print_table, test_metrics,
                                train_run)
from mmtopo.experiments.checkpoints import edge_range, edge_summary
from mmtopo.experiments.runs import REPO, library_train_py

RECIPE = REPO / 'configs' / 'stability' / 'resnet18_8xb16_digits.py'
STOCK = dict(type='ResNet_CIFAR')
# 16 base channels, as configs/cls/topo_resnet18_cifar_digits.py: the
# recipe's 64 cost about 0.9 s an iteration on one core
NARROW = dict(base_channels=16)


@dataclass
class Row:
    """One ablation: the backbone's type and extra arguments, the hook's
    lambda (None: no hook) and whether the edges are exempt from weight
    decay."""
    backbone: dict = field(default_factory=lambda: dict(
        type='TopoResNetCIFAR', topology=dict(type='learnable')))
    lambda_: Optional[float] = 1e-2
    exempt_edges: bool = True


def learnable(init: str = 'residual', **args) -> dict:
    return dict(
        type='TopoResNetCIFAR',
        topology=dict(type='learnable', init=init),
        **args)


SUM = dict(edge_grad='sum')
ROWS = {
    'stock':
    Row(STOCK, lambda_=None, exempt_edges=False),
    "learnable (defaults: edge_grad='rms')":
    Row(),
    "learnable, edge_grad='sum'":
    Row(learnable(**SUM)),
    "learnable, edge_grad='sum', lambda 0":
    Row(learnable(**SUM), lambda_=None),
    "learnable, edge_grad='sum', weight decay on edges":
    Row(learnable(**SUM), exempt_edges=False),
    "learnable, edge_grad='sum', init='uniform'":
    Row(learnable('uniform', **SUM)),
    "learnable, edge_grad='mean'":
    Row(learnable(edge_grad='mean')),
    'learnable, lambda 1e-3':
    Row(lambda_=1e-3),
    "learnable, init='uniform'":
    Row(learnable('uniform')),
}


def run_config(row: str, seed: int, data: Path, epochs: int) -> Config:
    """The recipe with the row's backbone at 16 channels, its
    MultiStepLR at [100, 150] of 200 epochs scaled to ``epochs``, the
    row's hook and edge settings, and a test loader on the held-out
    split."""
    spec = ROWS[row]
    root = str(Path(data).resolve())
    cfg = Config.fromfile(str(RECIPE))
    cfg.merge_from_dict(
        dict(
            model=dict(
                backbone=dict(spec.backbone, **NARROW),
                head=dict(in_channels=128)),
            randomness=dict(seed=seed),
            train_cfg=dict(max_epochs=epochs, val_interval=epochs),
            default_hooks=dict(checkpoint=dict(interval=epochs)),
            param_scheduler=dict(
                type='MultiStepLR',
                by_epoch=True,
                gamma=0.1,
                milestones=[round(epochs / 2),
                            round(epochs * 3 / 4)]),
            train_dataloader=dict(dataset=dict(data_root=root)),
            val_dataloader=dict(dataset=dict(data_root=root)),
            test_dataloader=dict(
                batch_size=16,
                dataset=dict(data_root=root, data_prefix='test'))))
    if spec.exempt_edges:
        cfg.merge_from_dict(
            dict(
                optim_wrapper=dict(
                    paramwise_cfg=dict(
                        custom_keys={'edge_weights': dict(decay_mult=0.)}))))
    if spec.lambda_ is not None:
        cfg.custom_hooks = [
            dict(type='EdgeSparsityHook', lambda_=spec.lambda_, interval=10)
        ]
    return cfg


def run_one(row: str, seed: int, data: Path, epochs: int,
            work_dir: Path) -> dict:
    """Train and test one row and seed through mmpretrain's own tools."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / 'config.py'
    run_config(row, seed, data, epochs).dump(str(config))
    train_py = library_train_py('mmpretrain')
    run = train_run(str(config), work_dir, train_py=train_py, check=False)
    ckpt = work_dir / f'epoch_{epochs}.pth'
    test = None
    if run.returncode == 0 and ckpt.exists():
        test = test_metrics(
            str(config),
            str(ckpt),
            work_dir / 'test',
            test_py=train_py.with_name('test.py'))['accuracy/top1']
    edges = edge_range(work_dir) if row != 'stock' else None
    return dict(
        returncode=run.returncode,
        val=run.last('accuracy/top1'),
        test=test,
        edges=edges)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument(
        '--rows',
        nargs='+',
        default=list(ROWS),
        choices=list(ROWS),
        metavar='ROW')
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--data', default='data/digits_3way')
    parser.add_argument('--work-dir', default='work_dirs/ablate')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()
    data = ensure_dataset('digits_3way', args.data)
    lines = [
        f'| row | val top-1 ({len(args.seeds)} seeds) | test top-1 | '
        'test per seed | failed | learned edges: range, active |',
        '| --- ' * 6 + '|'
    ]
    for row in args.rows:
        runs = []
        for seed in args.seeds:
            slug = re.sub(r'\W+', '_', row).strip('_')
            out = Path(args.work_dir) / f'{slug}_seed{seed}'
            runs.append(run_one(row, seed, data, args.epochs, out))
            print(row, seed, runs[-1], flush=True)
        failed = sum(r['returncode'] != 0 or r['test'] is None for r in runs)
        edges = edge_summary([r['edges'] for r in runs], digits=2)
        lines.append(f'| {row} | {mean_std((r["val"] for r in runs), 2)} | '
                     f'{mean_std((r["test"] for r in runs), 2)} | '
                     f'{per_seed([r["test"] for r in runs], 1)} | '
                     f'{failed} / {len(runs)} | {edges} |')
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
