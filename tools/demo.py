"""make demo: toy COCO set -> Faster R-CNN with a learnable TopoResNet ->
COCO metric (pycocotools) -> the learned topology, as a table and a PNG.

    python tools/demo.py [--work-dir work_dirs/demo] [--data data/toy_coco]
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

import mmtopo  # noqa: F401
from mmtopo.datasets.toy_coco import make_toy_coco
from mmtopo.utils.launch import build_runner
from mmtopo.visualization import format_topology

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'toy',
                  'faster_rcnn_topo_r18_fpn_toy.py')


def demo_config(config: str, data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(config)
    data_root = data_root.rstrip('/') + '/'
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = \
            data_root + 'annotations/val.json'
    cfg.work_dir = work_dir
    # evaluate once, after training (below), not also at the last epoch
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1
    return cfg


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--data', default='data/toy_coco')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()

    if not osp.exists(osp.join(args.data, 'annotations', 'val.json')):
        print(f'Generating the toy COCO set in {args.data} ...')
        make_toy_coco(args.data)
    cfg = demo_config(args.config, args.data, args.work_dir)
    runner = build_runner(cfg)
    runner.train()
    metrics = runner.val_loop.run()  # COCO bbox mAP through pycocotools

    print('\n=== COCO bbox metric on the toy val split ===')
    for key, value in metrics.items():
        print(f'{key:>24s}: {value:.4f}' if isinstance(value, float) else
              f'{key:>24s}: {value}')
    backbone = runner.model.backbone
    print('\n=== Learned topology (edge i->j: weight; "." = pruned) ===')
    print(format_topology(backbone.topology_graphs()))
    picture = osp.join(args.work_dir, 'topology', 'final.png')
    ckpt = osp.join(args.work_dir, f'epoch_{runner.epoch}.pth')
    print(f'\nLearned topology picture: {picture}\nCheckpoint: {ckpt}\n'
          f'Logs: {runner.log_dir}')
    return 0 if metrics.get('coco/bbox_mAP', 0) > 0 and osp.exists(picture) \
        else 1


if __name__ == '__main__':
    sys.exit(main())
