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
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from dataclasses import dataclass
from statistics import mean, pstdev
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_stability import (CIFAR, edge_range, edge_summary,  # noqa: E402
                             library_train_py)

from mmtopo.datasets import ensure_dataset  # noqa: E402
from mmtopo.utils.tables import print_table  # noqa: E402

STOCK = "type='ResNet_CIFAR'"
LEARNABLE = "type='TopoResNetCIFAR', topology=dict(type='learnable')"
LEARNABLE_UNIFORM = ("type='TopoResNetCIFAR', "
                     "topology=dict(type='learnable', init='uniform')")
NO_EDGE_DECAY = """
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
"""
HOOK = """
custom_hooks = [dict(type='EdgeSparsityHook', lambda_={lambda_},
                     interval=10)]
"""
# 16 base channels, as configs/cls/topo_resnet18_cifar_digits.py: the
# recipe's 64 cost about 0.9 s an iteration on one core
NARROW_BACKBONE = ', base_channels=16'
NARROW_HEAD = ', head=dict(in_channels=128)'
TEST_SPLIT = """
test_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}',
                 data_prefix='test', pipeline=test_pipeline))
"""

@dataclass
class Row:
    """One ablation: the backbone, its extra arguments, the hook's lambda
    (None: no hook) and whether the edges are exempt from weight decay."""
    backbone: str = LEARNABLE
    args: str = ''
    lambda_: Optional[float] = 1e-2
    exempt_edges: bool = True


SUM = ", edge_grad='sum'"
ROWS = {
    'stock': Row(STOCK, lambda_=None, exempt_edges=False),
    "learnable (defaults: edge_grad='rms')": Row(),
    "learnable, edge_grad='sum'": Row(args=SUM),
    "learnable, edge_grad='sum', lambda 0": Row(args=SUM, lambda_=None),
    "learnable, edge_grad='sum', weight decay on edges": Row(
        args=SUM, exempt_edges=False),
    "learnable, edge_grad='sum', init='uniform'": Row(
        LEARNABLE_UNIFORM, args=SUM),
    "learnable, edge_grad='mean'": Row(args=", edge_grad='mean'"),
    'learnable, lambda 1e-3': Row(lambda_=1e-3),
    "learnable, init='uniform'": Row(LEARNABLE_UNIFORM),
}


def schedule(epochs: int) -> str:
    """The recipe's MultiStepLR at [100, 150] of 200 epochs, scaled."""
    milestones = [round(epochs / 2), round(epochs * 3 / 4)]
    return (f'param_scheduler = dict(type=\'MultiStepLR\', by_epoch=True, '
            f'milestones={milestones}, gamma=0.1)\n')


def config_text(row: str, seed: int, data: Path, epochs: int) -> str:
    spec = ROWS[row]
    backbone = spec.backbone + spec.args + NARROW_BACKBONE
    extra = schedule(epochs)
    if spec.exempt_edges:
        extra += NO_EDGE_DECAY
    if spec.lambda_ is not None:
        extra += HOOK.format(lambda_=spec.lambda_)
    extra += TEST_SPLIT.format(data=os.path.abspath(data))
    return CIFAR.format(backbone=f'dict({backbone})', seed=seed,
                        epochs=epochs, data=os.path.abspath(data), extra=extra,
                        heads=NARROW_HEAD)


def last_metric(work_dir: Path, key: str):
    logs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not logs:
        return None
    rows = [json.loads(line) for line in logs[-1].read_text().split('\n')
            if line.strip()]
    values = [r[key] for r in rows if key in r]
    return values[-1] if values else None


def run_one(row: str, seed: int, data: Path, epochs: int,
            work_dir: Path) -> dict:
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / 'config.py'
    config.write_text(config_text(row, seed, data, epochs))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    train_py = library_train_py('mmpretrain')
    proc = subprocess.run([sys.executable, str(train_py), str(config),
                           '--work-dir', str(work_dir)],
                          cwd=REPO, capture_output=True, text=True, env=env)
    (work_dir / 'train_output.log').write_text(proc.stdout + proc.stderr)
    val = last_metric(work_dir, 'accuracy/top1')
    ckpt = work_dir / f'epoch_{epochs}.pth'
    test = None
    if proc.returncode == 0 and ckpt.exists():
        test_dir = work_dir / 'test'
        tproc = subprocess.run(
            [sys.executable, str(train_py.with_name('test.py')), str(config),
             str(ckpt), '--work-dir', str(test_dir)],
            cwd=REPO, capture_output=True, text=True, env=env)
        (work_dir / 'test_output.log').write_text(tproc.stdout +
                                                  tproc.stderr)
        test = last_metric(test_dir, 'accuracy/top1')
        if test is None:  # test.py logs its metrics, not scalars.json
            for line in reversed(tproc.stdout.splitlines()):
                if 'accuracy/top1:' in line:
                    test = float(line.split('accuracy/top1:')[1].split()[0])
                    break
    edges = edge_range(work_dir) if row != 'stock' else None
    return dict(returncode=proc.returncode, val=val, test=test, edges=edges)


def stats(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    return f'{mean(values):.2f} ± {pstdev(values):.2f}'


def per_seed(values) -> str:
    return ', '.join('-' if v is None else f'{v:.1f}' for v in values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--rows', nargs='+', default=list(ROWS),
                        choices=list(ROWS), metavar='ROW')
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--data', default='data/digits_3way')
    parser.add_argument('--work-dir', default='work_dirs/ablate')
    parser.add_argument('--out', help='also write the table to this file')
    args = parser.parse_args()
    data = ensure_dataset('digits_3way', args.data)
    lines = [f'| row | val top-1 ({len(args.seeds)} seeds) | test top-1 | '
             'test per seed | failed | learned edges: range, active |',
             '| --- ' * 6 + '|']
    for row in args.rows:
        runs = []
        for seed in args.seeds:
            slug = re.sub(r'\W+', '_', row).strip('_')
            out = Path(args.work_dir) / f'{slug}_seed{seed}'
            runs.append(run_one(row, seed, data, args.epochs, out))
            print(row, seed, runs[-1], flush=True)
        failed = sum(r['returncode'] != 0 or r['test'] is None for r in runs)
        lines.append(
            f'| {row} | {stats(r["val"] for r in runs)} | '
            f'{stats(r["test"] for r in runs)} | '
            f'{per_seed(r["test"] for r in runs)} | '
            f'{failed} / {len(runs)} | {edge_summary(runs, digits=2)} |')
    print_table(lines, args.out)


if __name__ == '__main__':
    main()
