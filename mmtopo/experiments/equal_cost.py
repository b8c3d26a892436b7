"""The equal-cost comparison: for a reference model and a supernet search
config, the five arms of ``tools/analysis_tools/compare_equal_cost.py``,
each trained for the reference's number of iterations and scored on the
held-out test split.

1. ``stock``: the reference config as it is;
2. ``learned``: search, prune, fine-tune (:mod:`.pipeline`);
3. ``scratch``: the learned, pruned graph trained from its init with the
   reference's schedule (the architecture without the inherited weights);
4. ``random``: a random sub-graph of the same supernet at the same FLOPs
   budget, from the same search checkpoint, fine-tuned like ``learned``
   (the choice of the graph without the learning);
5. ``dense``: the supernet without the sparsity hook, with the
   reference's schedule (the ceiling, at the supernet's cost).
"""
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config

from ..apis import init_model
from ..models import topology_backbone
from ..utils.complexity import BackboneCosts, densified
from ..utils.pruning import save_pruned, subgraph_model
from .pipeline import (SPARSITY_HOOKS, backbone_costs, finetune_config,
                       inference_ratios, merged_config, prune_checkpoint,
                       search_budget_flops, search_budget_params)
from .random_subgraph import random_subgraph, subgraph_specs
from .runs import Run, test_metrics, train_run
from .stats import mean_std, per_seed

ARMS = ('stock', 'learned', 'scratch', 'random', 'dense')


@dataclass(frozen=True)
class EqualCostTask:
    """A reference config and a search config on one data set."""
    reference: str
    search: str
    metric: str
    dataset: str
    data: str
    input_shape: tuple


EQUAL_COST_TASKS: Dict[str, EqualCostTask] = dict(
    toy_detection=EqualCostTask(
        'configs/equal_cost/faster_rcnn_r18_fpn_toy.py',
        'configs/equal_cost/faster_rcnn_topo_r34to18_fpn_toy.py',
        'coco/bbox_mAP', 'toy_coco', 'data/toy_coco', (3, 128, 128)),
    toy_detection_hard=EqualCostTask(
        'configs/equal_cost/faster_rcnn_r18_fpn_toy_hard.py',
        'configs/equal_cost/faster_rcnn_topo_r34to18_fpn_toy_hard.py',
        'coco/bbox_mAP', 'toy_coco_hard', 'data/toy_coco_hard', (3, 128, 128)),
    digits=EqualCostTask(
        'configs/equal_cost/resnet18_cifar_digits.py',
        'configs/equal_cost/topo_resnet34to18_cifar_digits.py',
        'accuracy/top1', 'digits_3way', 'data/digits_3way', (3, 32, 32)),
)


def with_search_options(task: EqualCostTask, options: dict,
                        out: Path) -> EqualCostTask:
    """``task`` with ``options`` (``key=value`` overrides, as
    ``--cfg-options`` takes them) merged into its search config, written
    to ``out``: every arm but stock derives from that config."""
    if not options:
        return task
    return replace(task, search=merged_config(task.search, options, out))


def schedule_of(config: str) -> dict:
    """A config's schedule: what the scratch and dense arms take from the
    reference so that every arm trains as many iterations."""
    cfg = Config.fromfile(config)
    return dict(
        train_cfg=cfg.train_cfg.to_dict(),
        param_scheduler=_plain(cfg.param_scheduler),
        default_hooks=dict(checkpoint=cfg.default_hooks.checkpoint.to_dict()))


def _plain(value):
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.to_dict() if hasattr(value, 'to_dict') else value


class EqualCostRuns:
    """The arms of one task and seed, in ``work_dir/<arm>``; every arm
    that a later one builds on (the search for ``random`` and ``learned``)
    runs once. ``time_inference``: each arm's backbone is also timed
    against the stock reference's (eval mode, CPU, batch 1 and 8, in
    turn: :func:`inference_ratios`)."""

    def __init__(self,
                 task: EqualCostTask,
                 seed: int,
                 work_dir: Path,
                 reuse: bool = False,
                 time_inference: bool = False):
        self.task = task
        self.seed = seed
        self.work_dir = Path(work_dir)
        self.reuse = reuse
        self.time_inference = time_inference
        self._search: Optional[Run] = None
        self._pruned: Optional[tuple] = None
        self._stock_backbone: Optional[torch.nn.Module] = None

    def train(self, config: str, name: str) -> Run:
        return train_run(
            config, self.work_dir / name, seed=self.seed, reuse=self.reuse)

    def scored(self,
               config: str,
               run: Run,
               dense: bool = False) -> Dict[str, float]:
        """The run's val and test metric; its training iterations, time and
        backbone FLOPs (per image, summed over the iterations); its
        backbone's FLOPs and parameters (``dense``: every edge active, as
        the supernet computes while it learns)."""
        test = test_metrics(
            config, run.checkpoint, run.work_dir / 'test', reuse=self.reuse)
        _, model = init_model(config)
        backbone = densified(model.backbone) if dense else model.backbone
        costs = backbone_costs(backbone, self.task.input_shape)
        result = dict(
            val=run.last(self.task.metric),
            test=test[self.task.metric],
            train_seconds=run.train_seconds,
            iters=run.iterations,
            train_flops=costs['flops'] * run.iterations,
            **costs)
        if self.time_inference:
            times = inference_ratios(backbone, self.stock_backbone(),
                                     self.task.input_shape)
            for batch, t in times.items():
                result[f'time_ratio_b{batch}'] = t['ratio']
        return result

    def stock_backbone(self) -> torch.nn.Module:
        """The reference config's backbone, built once: what every arm is
        timed against."""
        if self._stock_backbone is None:
            self._stock_backbone = init_model(self.task.reference)[1].backbone
        return self._stock_backbone

    # -- the steps the arms share -------------------------------------------
    def search(self) -> Run:
        if self._search is None:
            self._search = self.train(self.task.search, 'search')
        return self._search

    def pruned(self) -> tuple:
        """(config, checkpoint) of the learned graph pruned at 0."""
        if self._pruned is None:
            out = self.work_dir / 'pruned'
            if self.reuse and (out / 'pruned.pth').exists():
                self._pruned = (str(out / 'pruned.py'),
                                str(out / 'pruned.pth'))
            else:
                self._pruned = prune_checkpoint(self.task.search,
                                                self.search().checkpoint, out)
        return self._pruned

    def finetune_cfg(self) -> dict:
        return Config.fromfile(self.task.search).finetune_cfg.to_dict()

    # -- the arms ------------------------------------------------------------
    def stock(self) -> Dict[str, float]:
        return self.scored(self.task.reference,
                           self.train(self.task.reference, 'stock'))

    def learned(self) -> Dict[str, float]:
        config, checkpoint = self.pruned()
        tuned = finetune_config(config, self.finetune_cfg(), checkpoint,
                                self.work_dir / 'configs' / 'learned.py')
        result = self.scored(tuned, self.train(tuned, 'learned'))
        return self._with_search_cost(result)

    def scratch(self) -> Dict[str, float]:
        config, _ = self.pruned()
        scratch = merged_config(config, schedule_of(self.task.reference),
                                self.work_dir / 'configs' / 'scratch.py')
        return self.scored(scratch, self.train(scratch, 'scratch'))

    def random(self) -> Dict[str, float]:
        config, checkpoint = self.random_subgraph()
        tuned = finetune_config(config, self.finetune_cfg(), checkpoint,
                                self.work_dir / 'configs' / 'random.py')
        return self._with_search_cost(
            self.scored(tuned, self.train(tuned, 'random')))

    def dense(self) -> Dict[str, float]:
        cfg = Config.fromfile(self.task.search)
        hooks = [
            h for h in cfg.get('custom_hooks', [])
            if h.get('type') not in SPARSITY_HOOKS
        ]
        dense = merged_config(
            self.task.search,
            dict(
                schedule_of(self.task.reference),
                custom_hooks=hooks,
                finetune_cfg=None), self.work_dir / 'configs' / 'dense.py')
        return self.scored(dense, self.train(dense, 'dense'), dense=True)

    def _with_search_cost(self, result: dict) -> dict:
        """Add the search's training to an arm fine-tuned from it (the
        supernet trains every block: its dense FLOPs)."""
        search = self.search()
        _, model = init_model(self.task.search)
        dense = backbone_costs(
            densified(model.backbone), self.task.input_shape)['flops']
        result['train_seconds'] += search.train_seconds
        result['iters'] += search.iterations
        result['train_flops'] += dense * search.iterations
        return result

    def random_subgraph(self) -> tuple:
        """A random sub-graph of the searched supernet at the search's
        budget (FLOPs, and parameters where it has a target for them;
        drawn with this run's seed), holding the search checkpoint's
        weights: its config and checkpoint."""
        out = self.work_dir / 'random_graph'
        if self.reuse and (out / 'random.pth').exists():
            return str(out / 'random.py'), str(out / 'random.pth')
        cfg, model = init_model(self.task.search, self.search().checkpoint)
        _, backbone = topology_backbone(model)
        costs = BackboneCosts(backbone, self.task.input_shape)
        budget = search_budget_flops(cfg, self.task.input_shape)
        graphs = random_subgraph(
            backbone.topology_graphs(),
            costs,
            budget,
            np.random.default_rng([self.seed, 1]),
            max_params=search_budget_params(cfg))
        new_cfg, sub = subgraph_model(cfg, model, subgraph_specs(graphs))
        return save_pruned(
            new_cfg,
            sub,
            str(out),
            'random',
            meta=dict(
                random_subgraph_of=self.search().checkpoint, seed=self.seed))

    def run(self, arm: str) -> Dict[str, float]:
        if arm not in ARMS:
            raise ValueError(f'arm must be one of {ARMS}, got {arm!r}')
        return getattr(self, arm)()


def arms_table(results: Dict[str, List[dict]], metric: str) -> List[str]:
    """Markdown rows: per arm, test and val (mean ± std over seeds), the
    per-seed test values, backbone FLOPs and parameters against the stock
    reference (means over seeds), and the training: iterations, backbone
    FLOPs summed over them, and time, against the stock reference's; where
    the arms were timed, their backbones' inference time against the
    stock one's at batch 1 and 8 (the median ratio of each seed, their
    range over seeds)."""

    def ratio(rows, key):
        return np.mean([r[key] for r in rows]) / np.mean(
            [r[key] for r in results['stock']])

    timed = all('time_ratio_b1' in r for rows in results.values()
                for r in rows)

    def time_range(rows, batch):
        values = [r[f'time_ratio_b{batch}'] for r in rows]
        return f'{min(values):.2f}-{max(values):.2f}x'

    lines = [
        f'| arm | test {metric} (mean ± std) | test per seed | val '
        '(mean ± std) | backbone FLOPs vs stock | params vs stock | '
        'train iterations | training backbone FLOPs vs stock | train time '
        'vs stock |' +
        (' inference vs stock, batch 1 | batch 8 |' if timed else ''),
        '| --- ' * (11 if timed else 9) + '|'
    ]
    for arm, rows in results.items():
        if not rows:
            continue
        lines.append(
            f'| {arm} | {mean_std(r["test"] for r in rows)} | '
            f'{per_seed([r["test"] for r in rows])} | '
            f'{mean_std(r["val"] for r in rows)} | '
            f'{ratio(rows, "flops"):.4f}x | {ratio(rows, "params"):.3f}x | '
            f'{int(np.mean([r["iters"] for r in rows]))} | '
            f'{ratio(rows, "train_flops"):.2f}x | '
            f'{ratio(rows, "train_seconds"):.2f}x |' +
            (f' {time_range(rows, 1)} | {time_range(rows, 8)} |'
             if timed else ''))
    return lines
