"""L1 sparsity on the learnable edge weights, as a proximal step."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from ...models.layers import StageGraph
from ...models.topology import bridge_edges, widest_path_edges
from ...registry import register_hook
from ...utils.complexity import BackboneCosts
from .step_callback import StepCallback

# message hub runtime info, kept on resume: lambda's growth under a budget,
# and each stage's edges at the start of training and what the proximal
# step has moved them by since (see EdgeSparsityHook.edge_shifts)
LAMBDA_SCALE_KEY = 'topo/lambda_scale'
EDGE_ORIGIN_KEY = 'topo/edge_origin'
EDGE_PROX_KEY = 'topo/edge_prox_shift'
DEFAULT_LAMBDA_GROWTH = 1.01


@register_hook
class EdgeSparsityHook(Hook):
    """Soft-threshold every learnable ``edge_weights`` after each real
    optimizer step: ``w <- sign(w) * max(|w| - lr * lambda, 0)``.

    This is the proximal step of ``lambda * sum |w|`` (sparse structure
    selection), so pruned edges become exact zeros. ``lr`` is the current
    learning rate of the parameter group holding the edges (``lr_mult``
    included). The step runs after each step of the optimizer itself
    (:class:`StepCallback`), so it follows the optimizer exactly: not on
    accumulation-only iterations (``accumulative_counts``), not when an AMP
    loss scaler skips a step, and identically on every DDP rank.

    Under SGD an edge steps by ``lr`` times its gradient (by default the
    true one divided by ``sqrt(C)``; see ``edge_grad`` in
    :mod:`mmtopo.models.layers.edge_functions`) and the threshold
    ``lr * lambda`` is on that same scale: an edge is pruned when that
    gradient stays below ``lambda`` in magnitude, i.e. its true gradient
    below ``lambda * sqrt(C)``. The
    edges into a stage's output node keep their overall scale
    (``keep_output_scale``).
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
        target_ratio (float, optional): a budget in (0, 1]: the fraction of
            edges left active.
        target_flops (float, optional): a budget in (0, 1]: the fraction of
            the dense backbone's FLOPs left (every edge active, every block
            computed), as the pruned model would have it. Only whole blocks
            and edges are saved, so this drops when blocks die.
        lambda_growth (float, optional): with a budget, lambda is multiplied
            by this after every iteration in which the budget is not met, so a
            budget is reached without guessing lambda. Once it is met,
            lambda stops growing and the penalty pauses; edges at zero may
            grow back only as far as the budget allows (a step that would
            break it leaves them at zero). 1 keeps lambda fixed; the default
            is 1.01. Without a budget it has no meaning and is an error.
        flops_input_shape (tuple): ``(C, H, W)`` the FLOPs of ``target_flops``
            are measured at, once, before training.
        keep_output_scale (bool): the step thresholds the edges into each
            stage's output node like the others, then scales the survivors
            back to the absolute sum they had before it: among those edges
            it selects, it does not shrink. The next stage's norm layers
            make the loss blind to the overall scale of a stage's output,
            so shrinking it only raised the edges' effective learning rate
            (inversely to the scale squared): measured, the edges of a
            TopoResNetCIFAR-34 stage were thrown from 0.2 to 57 within 30
            iterations at lambda 0.03, lr 0.1. False applies the plain
            soft threshold to every edge.
        interval (int): log ``topo/*`` scalars every this many iterations.

    Besides lambda, the L1 norm and the active edges, the hook logs where
    the edges' movement comes from (:meth:`edge_shifts`): ``grad_shift``,
    how far the optimizer (the data) has moved them since training began,
    and ``prox_shift``, how far this hook's own steps have. A run whose
    ``grad_shift`` stays far below ``prox_shift`` learned no topology: its
    graph is the init minus a uniform shrinkage.

    The proximal step never cuts the last path through a stage: if it
    would, the edges of the stage's widest path keep their values from
    before the threshold (a stage whose output is constant zero is a broken
    network, not a sparse one).

    Under a budget, the hook logs whether it is *stalled*
    (``topo/budget_stalled``): every edge left in every stage lies on its
    stage's last path (:func:`bridge_edges`; chains, once the skip edges
    are pruned), so no edge can go until one off a path grows back; lambda
    keeps growing meanwhile (holding it there was tried: on digits it
    rescued one collapsed run and cost three others 5 to 29 top-1
    points). A budget still unmet when training ends is reported.
    """

    priority = 'NORMAL'

    def __init__(self,
                 lambda_: float = 1e-4,
                 begin: int = 0,
                 end: Optional[int] = None,
                 by_epoch: bool = False,
                 warmup: int = 0,
                 target_ratio: Optional[float] = None,
                 target_flops: Optional[float] = None,
                 lambda_growth: Optional[float] = None,
                 flops_input_shape: Sequence[int] = (3, 224, 224),
                 keep_output_scale: bool = True,
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
        for name, value in (('target_ratio', target_ratio),
                            ('target_flops', target_flops)):
            if value is not None and not 0 < value <= 1:
                raise ValueError(f'{name} must be in (0, 1], got {value!r}')
        if lambda_growth is not None and not (
                target_ratio is not None or target_flops is not None):
            raise ValueError(
                f'lambda_growth ({lambda_growth!r}) grows lambda until a '
                'budget is met: give target_ratio or target_flops, or leave '
                'lambda_growth out')
        if lambda_growth is None:
            lambda_growth = DEFAULT_LAMBDA_GROWTH
        if not (isinstance(lambda_growth, (int, float))
                and lambda_growth >= 1):
            raise ValueError(f'lambda_growth must be >= 1, got '
                             f'{lambda_growth!r}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval!r}')
        self.lambda_ = float(lambda_)
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.target_ratio = target_ratio
        self.target_flops = target_flops
        self.lambda_growth = float(lambda_growth)
        self.flops_input_shape = tuple(flops_input_shape)
        self.keep_output_scale = bool(keep_output_scale)
        self.interval = interval
        self._stages: List[Tuple[str, StageGraph]] = []
        self._costs: List[Tuple[nn.Module, BackboneCosts]] = []
        self._handles: list = []
        self._lambda_now = 0.0
        self._lambda_scale = 1.0  # the budget's growth so far
        self._hold = False  # budget met: zero edges regrow within it only
        self._held: List[torch.Tensor] = []
        self._disconnected: set = set()
        # per trained stage: its edges when training began, and the sum of
        # every change this hook made to them since (runtime info)
        self._origin: Dict[str, torch.Tensor] = {}
        self._prox_shift: Dict[str, torch.Tensor] = {}
        self._names: Dict[int, str] = {}  # id(stage) -> its module name

    @property
    def has_budget(self) -> bool:
        return self.target_ratio is not None or self.target_flops is not None

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
        # the budget's growth and the edges' record so far live in the
        # message hub's runtime info, which checkpoints carry: a resumed run
        # continues them, any run from iteration 0 (new, or load_from)
        # starts afresh. The hub is read only on resume because mmengine
        # shares one hub between runners of the same experiment name, so a
        # second run started in the same second would inherit the first's.
        resumed = runner.iter > 0
        self._lambda_scale = runner.message_hub.get_info(
            LAMBDA_SCALE_KEY, 1.0) if resumed else 1.0
        runner.message_hub.update_info(LAMBDA_SCALE_KEY, self._lambda_scale)
        self._track_shifts(runner.message_hub, resumed)
        if not self._stages:
            runner.logger.warning(
                'EdgeSparsityHook: the model has no trainable edge weights '
                '(no learnable topology, or all frozen); the hook does '
                'nothing.')
            return
        wrappers = (runner.optim_wrapper.values() if isinstance(
            runner.optim_wrapper, OptimWrapperDict) else
                    [runner.optim_wrapper])
        if self.target_flops is not None:
            self._costs = [(m, BackboneCosts(m, self.flops_input_shape))
                           for m in model.modules()
                           if hasattr(m, 'export_topology') and any(
                               s.learnable for s in m.stages)]
        found = set()
        for wrapper in wrappers:
            optimizer = wrapper.optimizer
            groups = self._edge_groups(optimizer, self._stages)
            if groups:
                found.update(id(s.edge_weights) for s, _ in groups)
                self._handles.append(
                    StepCallback(optimizer,
                                 lambda opt, groups=groups: self.
                                 _proximal_step(groups)))
        missing = [n for n, s in self._stages
                   if id(s.edge_weights) not in found]
        if missing:
            raise ValueError(
                'EdgeSparsityHook: no optimizer holds the edge weights of '
                f'{missing}; they would never be penalised')

    @staticmethod
    def _edge_groups(optimizer, stages) -> List[Tuple[StageGraph, Dict]]:
        """(stage, the param group of its edges) for the stages whose edges
        this optimizer holds."""
        owner = {id(p): group for group in optimizer.param_groups
                 for p in group['params']}
        return [(s, owner[id(s.edge_weights)])
                for _, s in stages if id(s.edge_weights) in owner]

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._stages and self.has_budget and not self.budget_met():
            runner.logger.warning(
                f'EdgeSparsityHook: the budget ({self._budget_text()}) was '
                'not met by the end of training' +
                ('; every edge left lies on the last path through its '
                 'stage (which the proximal step never cuts), so nothing '
                 'more could be pruned' if self.budget_stalled() else
                 '; lengthen the schedule or raise lambda_growth'))

    def _budget_text(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f'target_ratio={self.target_ratio}, active '
                         f"{self.edge_stats()['active_ratio']:.3f}")
        if self.target_flops is not None:
            parts.append(f'target_flops={self.target_flops}, now '
                         f'{self.flops_ratio():.3f}')
        return '; '.join(parts)

    # -- every iteration -----------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        lam = self.lambda_at(step) * self._lambda_scale
        self._hold = lam > 0 and self.has_budget and self.budget_met()
        if self._hold:
            lam = 0.0
            self._held = [s.edge_weights.detach() == 0
                          for _, s in self._stages]
        elif lam > 0 and self.has_budget:
            self._lambda_scale *= self.lambda_growth
            runner.message_hub.update_info(LAMBDA_SCALE_KEY,
                                           self._lambda_scale)
        self._lambda_now = lam

    def budget_met(self) -> bool:
        """Whether every budget given (edges, FLOPs) is met now."""
        if self.target_ratio is not None and \
                self.edge_stats()['active_ratio'] > self.target_ratio:
            return False
        return self.target_flops is None or \
            self.flops_ratio() <= self.target_flops

    def budget_stalled(self) -> bool:
        """Whether no edge of any trained stage can be pruned without
        cutting its stage: every one left lies on the stage's last path."""
        return all(_only_its_last_path(stage) for _, stage in self._stages)

    def flops_ratio(self) -> float:
        """The backbones' FLOPs, pruned at 0, as a fraction of dense."""
        left = sum(costs.flops(m.topology_graphs()) for m, costs in
                   self._costs)
        return left / sum(costs.total for _, costs in self._costs)

    def _track_shifts(self, hub, resumed: bool) -> None:
        """Start (or, on resume, continue) the record of how far the edges
        have moved and by whom; kept in the message hub's runtime info,
        which checkpoints carry."""
        origin = (hub.get_info(EDGE_ORIGIN_KEY) or {}) if resumed else {}
        prox = (hub.get_info(EDGE_PROX_KEY) or {}) if resumed else {}
        self._origin, self._prox_shift = {}, {}
        self._names = {id(stage): name for name, stage in self._stages}
        for name, stage in self._stages:
            weights = stage.edge_weights.detach()
            if name in origin and origin[name].shape == weights.shape:
                # copies: the loaded tensors may be another hook's
                self._origin[name] = origin[name].to(weights, copy=True)
                self._prox_shift[name] = prox[name].to(weights, copy=True)
            else:  # a new run, or a load_from of another model: start here
                self._origin[name] = weights.clone()
                self._prox_shift[name] = torch.zeros_like(weights)
        # the hub holds these very tensors: a checkpoint saves them as they
        # are at that moment
        hub.update_info(EDGE_ORIGIN_KEY, self._origin)
        hub.update_info(EDGE_PROX_KEY, self._prox_shift)

    def edge_origins(self) -> Dict[str, torch.Tensor]:
        """Each trained stage's edge weights when training began (a copy),
        by the stage's module name."""
        return {name: w.clone() for name, w in self._origin.items()}

    def edge_shifts(self) -> Dict[str, float]:
        """Where the edges' movement since training began came from, as
        mean absolute values over the edges, in all and per stage:
        ``prox_shift``, the sum of this hook's changes (the shrinkage, and
        the guards that undo part of it); ``grad_shift``, the rest of
        ``w - w_start``, i.e. the optimizer's steps (gradient, momentum,
        any weight decay). The two add up to the net change exactly."""
        stats, grad_total, prox_total, count = {}, 0.0, 0.0, 0
        for name, stage in self._stages:
            mask = stage.edge_mask
            prox = self._prox_shift[name][mask]
            grad = (stage.edge_weights.detach()[mask] -
                    self._origin[name][mask] - prox)
            stats[f'{name}/grad_shift'] = float(grad.abs().mean())
            stats[f'{name}/prox_shift'] = float(prox.abs().mean())
            grad_total += float(grad.abs().sum())
            prox_total += float(prox.abs().sum())
            count += prox.numel()
        stats['grad_shift'] = grad_total / max(count, 1)
        stats['prox_shift'] = prox_total / max(count, 1)
        return stats

    def pruned_against_init(self) -> Dict[str, int]:
        """Whether the init alone could have chosen the pruned edges.

        ``pruned``: the blocks' in-edges now at zero. ``out_of_init_order``:
        those of them that started larger (in magnitude) than an in-edge of
        their stage that is still active. Shrinkage alone prunes the
        smallest starts first, so it leaves 0 here; only the gradient
        reorders edges. The edges into a stage's output node are left out:
        ``keep_output_scale`` spares them the shrinkage.
        """
        pruned, out_of_order = 0, 0
        for name, stage in self._stages:
            mask = stage.edge_mask.clone()
            mask[:, -1] = False
            start = self._origin[name][mask].abs()
            zero = stage.edge_weights.detach()[mask] == 0
            pruned += int(zero.sum())
            if (~zero).any():
                smallest_kept = start[~zero].min()
                out_of_order += int((zero & (start > smallest_kept)).sum())
        return dict(pruned=pruned, out_of_init_order=out_of_order)

    @torch.no_grad()
    def _proximal_step(self, groups) -> None:
        """This hook's change after an optimizer step, recorded per stage
        so that :meth:`edge_shifts` can tell it from the optimizer's."""
        before = [stage.edge_weights.detach().clone() for stage, _ in groups]
        self._penalise(groups)
        for (stage, _), was in zip(groups, before):
            self._prox_shift[self._names[id(stage)]].add_(
                stage.edge_weights.detach() - was)

    def _penalise(self, groups) -> None:
        if self._hold:
            # budget met: edges at zero may grow back only while the budget
            # stays met; a step that would break it is undone for them
            if not self.budget_met():
                held = {id(s): h
                        for (_, s), h in zip(self._stages, self._held)}
                for stage, _ in groups:
                    stage.edge_weights.masked_fill_(held[id(stage)], 0.0)
            return
        if self._lambda_now == 0.0:
            return
        befores = []
        for stage, group in groups:
            weights = stage.edge_weights
            before = weights.clone()
            befores.append(before)
            weights.copy_(F.softshrink(weights, group['lr'] *
                                       self._lambda_now))
            if self.keep_output_scale:
                _restore_l1(weights[:, -1], before[:, -1])
            if not stage.connects_input_to_output():
                _, path = widest_path_edges(len(stage) + 1,
                                            stage.edges(before))
                for i, j in path:
                    weights[i, j] = before[i, j]
        if self.has_budget and self.budget_met():
            self._prune_no_further_than_the_budget(groups, befores)

    def _prune_no_further_than_the_budget(self, groups, befores) -> None:
        """The step that meets the budget zeroes only the weakest edges it
        needs: of the edges it zeroed, the strongest (by magnitude before
        the threshold) keep their values as long as the budget stays met,
        so one step's many crossings do not overshoot it."""
        zeroed = [(float(before[i, j].abs()), k, i, j)
                  for k, ((stage, _), before) in enumerate(zip(groups,
                                                               befores))
                  for i, j in (before.bool() & ~stage.edge_weights.bool())
                  .nonzero().tolist()]
        for _, k, i, j in sorted(zeroed, reverse=True):
            weights = groups[k][0].edge_weights
            weights[i, j] = befores[k][i, j]
            if not self.budget_met():
                weights[i, j] = 0.0
                return

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self._stages or not self.every_n_train_iters(
                runner, self.interval):
            return
        hub = runner.message_hub
        hub.update_scalar('train/topo/lambda', self._lambda_now)
        for name in ('target_ratio', 'target_flops'):
            if getattr(self, name) is not None:
                hub.update_scalar(f'train/topo/{name}', getattr(self, name))
        if self._costs:
            hub.update_scalar('train/topo/flops_ratio', self.flops_ratio())
        if self.has_budget:
            hub.update_scalar('train/topo/budget_stalled',
                              float(self.budget_stalled()))
        for key, value in {**self.edge_stats(),
                           **self.edge_shifts()}.items():
            hub.update_scalar(f'train/topo/{key}', value)
        self._warn_disconnected(runner)

    def _warn_disconnected(self, runner) -> None:
        """Say once per stage when every path through it is cut."""
        for name, stage in self._stages:
            if name in self._disconnected or stage.connects_input_to_output():
                continue
            self._disconnected.add(name)
            runner.logger.warning(
                f'EdgeSparsityHook: every path through {name} is cut, so '
                'its output is constant zero; the proximal step never cuts '
                'a stage, so its edges were set so (a loaded checkpoint?)')

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


def _only_its_last_path(stage: StageGraph) -> bool:
    """Whether every non-zero edge of ``stage`` lies on every path through
    it, so that zeroing any would cut the stage."""
    edges = stage.edges()
    active = sum(1 for _, _, w in edges if w != 0)
    return len(bridge_edges(len(stage) + 1, edges)) == active


def _restore_l1(column: torch.Tensor, before: torch.Tensor) -> None:
    """Scale ``column`` (in place) back to the absolute sum of ``before``;
    its zeros stay zeros."""
    now = column.abs().sum()
    if now > 0:
        column.mul_(before.abs().sum() / now)
