"""L1 sparsity on the learnable edge weights, as a proximal step."""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from ...models.graph import StageGraph
from ...registry import register_hook


@register_hook
class EdgeSparsityHook(Hook):
    """Soft-threshold every learnable ``edge_weights`` after each real
    optimizer step: ``w <- sign(w) * max(|w| - lr * lambda, 0)``.

    This is the proximal step of ``lambda * sum |w|`` (sparse structure
    selection), so pruned edges become exact zeros. ``lr`` is the current
    learning rate of the parameter group holding the edges (``lr_mult``
    included). The step runs from a step post-hook on the optimizer itself,
    so it follows the optimizer exactly: not on accumulation-only iterations
    (``accumulative_counts``), not when an AMP loss scaler skips a step, and
    identically on every DDP rank.

    The edges' gradients are channel means (see :mod:`mmtopo.models.graph`),
    so under SGD an edge steps by ``lr`` times its channel-mean gradient and
    the threshold ``lr * lambda`` is on that same scale: an edge is pruned
    when its channel-mean gradient stays below ``lambda`` in magnitude.
    Stages whose edges do not train (``frozen_stages``) are left alone and
    not counted.

    Args:
        lambda_ (float): the L1 strength, >= 0.
        begin (int): first iteration (epoch if ``by_epoch``) to penalise.
        end (int, optional): penalise before this iteration / epoch only;
            None means to the end of training.
        by_epoch (bool): count ``begin``, ``end`` and ``warmup`` in epochs.
        warmup (int): grow lambda linearly from 0 over this many iterations
            (epochs) after ``begin``; 0 means constant.
        target_ratio (float, optional): in (0, 1]; do not penalise while the
            active-edge ratio is at or below it.
        interval (int): log ``topo/*`` scalars every this many iterations.
    """

    priority = 'NORMAL'

    def __init__(self,
                 lambda_: float = 1e-4,
                 begin: int = 0,
                 end: Optional[int] = None,
                 by_epoch: bool = False,
                 warmup: int = 0,
                 target_ratio: Optional[float] = None,
                 interval: int = 50):
        if not (isinstance(lambda_, (int, float)) and math.isfinite(lambda_)
                and lambda_ >= 0):
            raise ValueError(f'lambda_ must be a finite number >= 0, got '
                             f'{lambda_!r}')
        if begin < 0:
            raise ValueError(f'begin must be >= 0, got {begin!r}')
        if end is not None and end <= begin:
            raise ValueError(f'end ({end!r}) must be after begin ({begin!r})')
        if warmup < 0:
            raise ValueError(f'warmup must be >= 0, got {warmup!r}')
        if target_ratio is not None and not 0 < target_ratio <= 1:
            raise ValueError(
                f'target_ratio must be in (0, 1], got {target_ratio!r}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval!r}')
        self.lambda_ = float(lambda_)
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.target_ratio = target_ratio
        self.interval = interval
        self._stages: List[Tuple[str, StageGraph]] = []
        self._handles: list = []
        self._lambda_now = 0.0
        self._disconnected: set = set()

    # -- the schedule ------------------------------------------------------
    def lambda_at(self, step: int) -> float:
        """lambda at iteration (or epoch) ``step``."""
        if step < self.begin or (self.end is not None and step >= self.end):
            return 0.0
        if self.warmup > 0:
            return self.lambda_ * min(1.0, (step - self.begin + 1) /
                                      self.warmup)
        return self.lambda_

    # -- set-up --------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # frozen stages (frozen_stages, requires_grad=False) are not trained:
        # they are neither penalised nor counted in the ratios
        self._stages = [(name, m) for name, m in model.named_modules()
                        if isinstance(m, StageGraph) and m.learnable
                        and m.edge_weights.requires_grad]
        if not self._stages:
            runner.logger.warning(
                'EdgeSparsityHook: the model has no trainable edge weights '
                '(no learnable topology, or all frozen); the hook does '
                'nothing.')
            return
        wrappers = (runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else
                    [runner.optim_wrapper])
        found = set()
        for wrapper in wrappers:
            optimizer = wrapper.optimizer
            groups = self._edge_groups(optimizer, self._stages)
            if groups:
                found.update(id(w) for w, _ in groups)
                self._handles.append(
                    optimizer.register_step_post_hook(
                        lambda opt, args, kwargs, groups=groups: self.
                        _proximal_step(groups)))
        missing = [n for n, s in self._stages
                   if id(s.edge_weights) not in found]
        if missing:
            raise ValueError(
                'EdgeSparsityHook: no optimizer holds the edge weights of '
                f'{missing}; they would never be penalised')

    @staticmethod
    def _edge_groups(optimizer, stages) -> List[Tuple[torch.Tensor, Dict]]:
        """(edge tensor, its param group) for edges this optimizer holds."""
        owner = {id(p): group for group in optimizer.param_groups
                 for p in group['params']}
        return [(s.edge_weights, owner[id(s.edge_weights)])
                for _, s in stages if id(s.edge_weights) in owner]

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- every iteration -----------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        lam = self.lambda_at(step)
        if lam > 0 and self.target_ratio is not None and self._stages:
            if self.edge_stats()['active_ratio'] <= self.target_ratio:
                lam = 0.0
        self._lambda_now = lam

    @torch.no_grad()
    def _proximal_step(self, groups) -> None:
        if self._lambda_now == 0.0:
            return
        for weights, group in groups:
            threshold = group['lr'] * self._lambda_now
            weights.copy_(F.softshrink(weights, threshold))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self._stages or not self.every_n_train_iters(
                runner, self.interval):
            return
        hub = runner.message_hub
        hub.update_scalar('train/topo/lambda', self._lambda_now)
        for key, value in self.edge_stats().items():
            hub.update_scalar(f'train/topo/{key}', value)
        self._warn_disconnected(runner)

    def _warn_disconnected(self, runner) -> None:
        """Say once per stage when pruning has cut every path through it."""
        for name, stage in self._stages:
            if name in self._disconnected or stage.connects_input_to_output():
                continue
            self._disconnected.add(name)
            runner.logger.warning(
                f'EdgeSparsityHook: every path through {name} is pruned, so '
                f'its output is constant zero (lambda_={self.lambda_}); a '
                'smaller lambda_ or a target_ratio keeps it connected.')

    def edge_stats(self) -> Dict[str, float]:
        """L1 norm, active (non-zero) edges and their ratio over the trained
        stages, in all and per stage, keyed by the stage's full module name
        (``backbone.layer1/active_edges``), so two backbones in one model
        (teacher and student, two streams) keep their own."""
        stats = {}
        total_l1, total_active, total_edges = 0.0, 0, 0
        for name, stage in self._stages:
            weights = stage.edge_weights.detach()[stage.edge_mask]
            l1 = float(weights.abs().sum())
            active = int((weights != 0).sum())
            stats[f'{name}/edge_l1'] = l1
            stats[f'{name}/active_edges'] = active
            total_l1 += l1
            total_active += active
            total_edges += weights.numel()
        stats['edge_l1'] = total_l1
        stats['active_edges'] = total_active
        stats['active_ratio'] = total_active / max(total_edges, 1)
        return stats
