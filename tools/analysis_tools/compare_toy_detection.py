"""Train the toy detector with several wirings and seeds (same schedule) and
print bbox mAP and seconds per iteration as a table.

    python tools/analysis_tools/compare_toy_detection.py --seeds 0 1
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean, pstdev

REPO = Path(__file__).resolve().parents[2]
CONFIGS = dict(
    learnable='configs/toy/faster_rcnn_topo_r18_fpn_toy.py',
    residual='configs/toy/faster_rcnn_topo_r18_fpn_toy_residual.py')


def train(config: str, seed: int, data: str, work_dir: Path) -> dict:
    root = data.rstrip('/') + '/'
    options = [f'randomness.seed={seed}']
    options += [f'{s}_dataloader.dataset.data_root={root}'
                for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={root}annotations/val.json'
                for s in ('val', 'test')]
    subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir',
                    str(work_dir), '--cfg-options', *options], cwd=REPO,
                   check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    log = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    train_rows = [r for r in rows if 'loss' in r]
    evals = [r for r in rows if 'coco/bbox_mAP' in r]
    return dict(mAP=evals[-1]['coco/bbox_mAP'],
                s_per_iter=mean(r['time'] for r in train_rows[1:]),
                active=train_rows[-1].get('topo/active_ratio'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--data', default='data/toy_coco')
    parser.add_argument('--work-dir', default='work_dirs/compare_toy')
    args = parser.parse_args()
    if not (Path(args.data) / 'annotations' / 'val.json').exists():
        from mmtopo.datasets.toy_coco import make_toy_coco
        make_toy_coco(args.data)
    results = {}
    for name, config in CONFIGS.items():
        for seed in args.seeds:
            out = Path(args.work_dir) / f'{name}_seed{seed}'
            results.setdefault(name, []).append(
                train(config, seed, args.data, out))
            print(name, seed, results[name][-1], flush=True)
    print('\n| wiring | bbox mAP (mean ± std) | per seed | s/iter |')
    print('| --- | --- | --- | --- |')
    for name, runs in results.items():
        maps = [r['mAP'] for r in runs]
        print(f'| {name} | {mean(maps):.3f} ± {pstdev(maps):.3f} | '
              f'{", ".join(f"{m:.3f}" for m in maps)} | '
              f'{mean(r["s_per_iter"] for r in runs):.3f} |')


if __name__ == '__main__':
    main()
