"""make demo: the whole story on the toy COCO set, in a few minutes on CPU.

A Faster R-CNN with a TopoResNet-34 layout learns its connectivity under a
budget (80% of the backbone FLOPs), is evaluated with the
COCO metric (pycocotools) on the val split and the held-out test split,
draws its learned topology, and is pruned to a deployable model, which is
evaluated again on test (same mAP) and costed (fewer FLOPs and
parameters).

    python tools/demo.py [--config CFG] [--data data/toy_coco]
                         [--work-dir work_dirs/demo]
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config

import mmtopo  # noqa: F401
from mmtopo.datasets import ensure_dataset
from mmtopo.utils.complexity import BackboneCosts, count_flops
from mmtopo.utils.launch import build_runner
from mmtopo.utils.node_similarity import node_output_correlation
from mmtopo.utils.pruning import prune_model, save_pruned
from mmtopo.visualization import format_topology

CONFIG = osp.join(
    osp.dirname(__file__), '..', 'configs', 'toy',
    'faster_rcnn_topo_r34_fpn_toy_budget.py')
IMAGE = (3, 128, 128)


def demo_config(config: str, data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(config)
    data_root = data_root.rstrip('/') + '/'
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data_root
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = \
            data_root + f'annotations/{split}.json'
    cfg.work_dir = work_dir
    # evaluate once, after training (below), not also at the last epoch
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1
    return cfg


def evaluate_pruned(cfg: Config, checkpoint: str, work_dir: str) -> dict:
    """COCO metric of the pruned model, as mmdet's tools/test.py runs it."""
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    return build_runner(cfg).test()


def print_learning_report(runner) -> None:
    """Did the data choose the graph? How far the gradient moved the edges
    against the sparsity step, and whether the pruned edges are simply
    those that started smallest."""
    from mmtopo.engine import EdgeSparsityHook
    hooks = [h for h in runner.hooks if isinstance(h, EdgeSparsityHook)]
    if not hooks:
        return
    hook = hooks[0]
    shifts = hook.edge_shifts()
    print('\n=== Where the edges\' movement came from (mean |change|) ===')
    print(f"gradient {shifts['grad_shift']:.4f}, sparsity step "
          f"{shifts['prox_shift']:.4f}")
    order = hook.pruned_against_init()
    print(f"pruned block in-edges: {order['pruned']}; "
          f"{order['out_of_init_order']} of them started larger than an "
          'in-edge of their stage that was kept (0: the init order alone '
          'could have chosen them)')


def print_node_correlation(runner) -> None:
    """Whether the blocks gave the edges anything to choose between."""
    model = runner.model
    batch = model.data_preprocessor(next(iter(runner.val_dataloader)), False)
    corr = node_output_correlation(model.backbone, batch['inputs'])
    print('correlation of the node outputs within each stage, on val '
          'images (1: every in-edge carries the same map, so the data '
          'cannot prefer one): ' + ', '.join(f'{name} {value:.3f}'
                                             for name, value in corr.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--data', default='data/toy_coco')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()

    if not osp.exists(osp.join(args.data, 'annotations', 'test.json')):
        print(f'Generating the toy COCO set in {args.data} ...')
    ensure_dataset('toy_coco', args.data)
    cfg = demo_config(args.config, args.data, args.work_dir)
    runner = build_runner(cfg)
    runner.train()
    # COCO bbox mAP through pycocotools
    val_metrics = runner.val_loop.run()
    metrics = runner.test_loop.run()
    model = runner.model
    backbone = model.backbone

    pruned_cfg, pruned = prune_model(cfg, model)
    stem = osp.splitext(osp.basename(args.config))[0] + '_pruned'
    pruned_dir = osp.join(args.work_dir, 'pruned')
    cfg_path, ckpt_path = save_pruned(
        pruned_cfg,
        pruned,
        pruned_dir,
        stem,
        meta=dict(
            pruned_from=osp.join(args.work_dir, f'epoch_{runner.epoch}.pth'),
            threshold=0.0))
    pruned_metrics = evaluate_pruned(pruned_cfg, ckpt_path,
                                     osp.join(pruned_dir, 'test'))

    image = torch.zeros(1, *IMAGE)
    dense_flops = BackboneCosts(backbone, IMAGE).total
    pruned_flops = count_flops(pruned.backbone, (image, ))
    params = sum(p.numel() for p in backbone.parameters())
    pruned_params = sum(p.numel() for p in pruned.backbone.parameters())
    edges = [e for g in backbone.topology_graphs() for e in g.edges]
    active = sum(w != 0 for _, _, w in edges)

    print('\n=== Learned topology (edge i->j: weight; "." = pruned) ===')
    print(format_topology(backbone.topology_graphs()))
    print('\n=== COCO bbox metric (test: the held-out split) ===')
    print(f'{"":>24s}  {"val":>8s}  {"test":>8s}  {"pruned":>8s}')
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f'{key:>24s}: '
                  f'{val_metrics.get(key, float("nan")):8.4f}  '
                  f'{value:8.4f}  '
                  f'{pruned_metrics.get(key, float("nan")):8.4f}')
    print('\n=== Cost of the backbone at 128x128 ===')
    print(f'active edges: {active}/{len(edges)} ({active / len(edges):.2f})')
    print(f'FLOPs: dense {dense_flops / 1e9:.4f} G -> pruned '
          f'{pruned_flops / 1e9:.4f} G ({pruned_flops / dense_flops:.3f}x)')
    print(f'parameters: {params / 1e6:.4f} M -> {pruned_params / 1e6:.4f} M '
          f'({pruned_params / params:.3f}x)')
    print_learning_report(runner)
    print_node_correlation(runner)
    removed = pruned.backbone.removed_blocks()
    print(f'removed blocks: {removed or "none"}')
    picture = osp.join(args.work_dir, 'topology', 'final.png')
    print(f'\nLearned topology picture: {picture}\n'
          f'Pruned config: {cfg_path}\nPruned checkpoint: {ckpt_path}\n'
          f'Logs: {runner.log_dir}')
    same = all(
        abs(metrics[k] - pruned_metrics[k]) < 1e-9 for k in metrics
        if isinstance(metrics[k], float))
    ok = metrics.get('coco/bbox_mAP', 0) > 0 and same and \
        osp.exists(picture)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
