"""L1 sparsity on the learnable edge weights, as a proximal step."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from ...models.layers import StageGraph
from ...registry import register_hook
from ...utils.validation import (check_bool, check_int, check_number,
                                 check_shape)
from ..sparsity import (EdgeBudget, EdgeShiftRecord, LambdaSchedule,
                        edge_stats, proximal_l1_step)
from ..sparsity.budget import LAMBDA_SCALE_KEY
from .step_callback import StepCallback

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
    gradient stays below ``lambda`` in magnitude. With momentum ``mu`` the
    gradient an edge needs to stay is ``lambda * (1 - mu)``. Stages whose
    edges do not train (``frozen_stages``) are left alone and not counted.

    The hook keeps the lifecycle and the logging; the parts are units of
    their own (:mod:`mmtopo.engine.sparsity`): the schedule
    (:class:`LambdaSchedule`), the step (:func:`proximal_l1_step`, which
    never cuts the last path through a stage), the budget
    (:class:`EdgeBudget`) and the record of where the edges' movement came
    from (:class:`EdgeShiftRecord`).

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
        target_flops (float | dict, optional): a budget of FLOPs for the
            pruned backbone: a fraction in (0, 1] of the dense backbone's
            (every edge active, every block computed);
            ``dict(of=<backbone config>)``, the FLOPs of a reference
            backbone, e.g. ``dict(of=dict(type='ResNet', depth=18))`` to
            prune a larger supernet to ResNet-18's cost, with ``ratio=r``
            in it for ``r`` times that cost; or ``dict(flops=<count>)``.
            All are counted by the same counter,
            at ``flops_input_shape``. Only whole blocks and edges are saved,
            so the FLOPs drop when blocks die or edges go.
        target_params (dict, optional): a budget of parameters for the
            pruned backbone, as deployed: ``dict(of=<backbone config>)``,
            the parameters of a reference backbone (``ratio=r`` in it for
            ``r`` times those), or ``dict(params=<count>)``. Given with
            ``target_flops``, both must be met: at a small input a FLOPs
            budget alone can keep wide blocks that cost few FLOPs but many
            weights.
        lambda_growth (float, optional): with a budget, lambda is multiplied
            by this after every iteration in which the budget is not met
            (:class:`EdgeBudget`); 1 keeps lambda fixed; default 1.01.
            Without a budget it has no meaning and is an error.
        flops_input_shape (tuple): ``(C, H, W)`` the FLOPs of ``target_flops``
            are measured at, once, before training.
        keep_output_scale (bool): the edges into each stage's output node
            are thresholded like the others, then scaled back to the
            absolute sum they had (:func:`proximal_l1_step`). False applies
            the plain soft threshold to every edge.
        interval (int): log ``topo/*`` scalars every this many iterations.

    Besides lambda, the L1 norm and the active edges, the hook logs where
    the edges' movement comes from (:meth:`edge_shifts`): ``grad_shift``,
    the optimizer's (the data's), and ``prox_shift``, this hook's own. A
    run whose ``grad_shift`` stays far below ``prox_shift`` learned no
    topology. Under a budget it logs whether it is *stalled*
    (``topo/budget_stalled``): every edge left lies on its stage's last
    path, so nothing more can go until an edge off a path grows back. A
    budget still unmet when training ends is reported.
    """

    priority = 'NORMAL'

    def __init__(self,
                 lambda_: float = 1e-4,
                 begin: int = 0,
                 end: Optional[int] = None,
                 by_epoch: bool = False,
                 warmup: int = 0,
                 target_ratio: Optional[float] = None,
                 target_flops: Union[None, float, dict] = None,
                 target_params: Optional[dict] = None,
                 lambda_growth: Optional[float] = None,
                 flops_input_shape: Sequence[int] = (3, 224, 224),
                 keep_output_scale: bool = True,
                 interval: int = 50):
        check_number('lambda_', lambda_, low=0)
        check_int('begin', begin, min_value=0)
        if end is not None:
            check_int('end', end)
            if end <= begin:
                raise ValueError(
                    f'end ({end!r}) must be after begin ({begin!r})')
        check_bool('by_epoch', by_epoch)
        check_int('warmup', warmup, min_value=0)
        if target_ratio is not None:
            check_number(
                'target_ratio', target_ratio, low=0, high=1, low_open=True)
        _check_target_flops(target_flops)
        _check_target_params(target_params)
        has_budget = any(
            t is not None for t in (target_ratio, target_flops, target_params))
        if lambda_growth is not None and not has_budget:
            raise ValueError(
                f'lambda_growth ({lambda_growth!r}) grows lambda until a '
                'budget is met: give target_ratio, target_flops or '
                'target_params, or leave lambda_growth out')
        if lambda_growth is None:
            lambda_growth = DEFAULT_LAMBDA_GROWTH
        check_number('lambda_growth', lambda_growth, low=1)
        check_shape('flops_input_shape', flops_input_shape, 3)
        check_bool('keep_output_scale', keep_output_scale)
        check_int('interval', interval, min_value=1)
        self.schedule = LambdaSchedule(float(lambda_), begin, end, warmup)
        self.by_epoch = by_epoch
        self.flops_input_shape = tuple(flops_input_shape)
        self.target_ratio = target_ratio
        self.target_flops = target_flops
        self.target_params = target_params
        self.lambda_growth = float(lambda_growth)
        self.keep_output_scale = keep_output_scale
        self.interval = interval
        self.budget: Optional[EdgeBudget] = EdgeBudget(
            target_ratio, target_flops, self.lambda_growth,
            self.flops_input_shape, target_params) if has_budget else None
        self.shifts = EdgeShiftRecord()
        self.lambda_now = 0.0  # what this iteration's steps apply
        self._stages: List[Tuple[str, StageGraph]] = []
        self._names: Dict[int, str] = {}  # id(stage) -> its module name
        self._handles: list = []
        self._disconnected: set = set()

    @property
    def has_budget(self) -> bool:
        return self.budget is not None

    # the schedule's arguments, as given
    lambda_ = property(lambda self: self.schedule.lambda_)
    begin = property(lambda self: self.schedule.begin)
    end = property(lambda self: self.schedule.end)
    warmup = property(lambda self: self.schedule.warmup)

    def lambda_at(self, step: int) -> float:
        """lambda at iteration (or epoch) ``step``, before any growth."""
        return self.schedule.at(step)

    # -- set-up --------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # frozen stages (frozen_stages, requires_grad=False) are not trained:
        # they are neither penalised nor counted in the ratios
        self._stages = [(name, m) for name, m in model.named_modules()
                        if isinstance(m, StageGraph) and m.learnable
                        and m.edge_weights.requires_grad]
        self._names = {id(stage): name for name, stage in self._stages}
        # the budget's growth and the edges' record so far live in the
        # message hub's runtime info, which checkpoints carry: a resumed run
        # continues them, any run from iteration 0 (new, or load_from)
        # starts afresh. The hub is read only on resume because mmengine
        # shares one hub between runners of the same experiment name, so a
        # second run started in the same second would inherit the first's.
        hub = runner.message_hub
        resumed = runner.iter > 0
        scale = hub.get_info(LAMBDA_SCALE_KEY, 1.0) if resumed else 1.0
        hub.update_info(LAMBDA_SCALE_KEY, scale)
        self.shifts.start(self._stages, hub, resumed)
        if not self._stages and self.budget is not None:
            frozen = [
                name for name, m in model.named_modules()
                if isinstance(m, StageGraph) and m.learnable
            ]
            why = (f'the learnable stages {frozen} are all frozen '
                   '(frozen_stages, or requires_grad=False)' if frozen else
                   'the model has no learnable edges (a fixed topology, or '
                   'no topology backbone)')
            raise ValueError(
                f'EdgeSparsityHook: a budget ({self.budget.describe_target()}'
                f') cannot be met by pruning: {why}; remove the budget or '
                'the hook')
        if not self._stages:
            runner.logger.warning(
                'EdgeSparsityHook: the model has no trainable edge weights '
                '(no learnable topology, or all frozen); the hook does '
                'nothing.')
            return
        if self.budget is not None:
            self.budget.setup(model, self._stages, scale)
        wrappers = (
            runner.optim_wrapper.values() if isinstance(
                runner.optim_wrapper, OptimWrapperDict) else
            [runner.optim_wrapper])
        found = set()
        for wrapper in wrappers:
            optimizer = wrapper.optimizer
            groups = self._edge_groups(optimizer, self._stages)
            if groups:
                found.update(id(s.edge_weights) for s, _ in groups)
                self._handles.append(
                    StepCallback(
                        optimizer,
                        lambda opt, groups=groups: self._proximal_step(groups))
                )
        missing = [
            n for n, s in self._stages if id(s.edge_weights) not in found
        ]
        if missing:
            raise ValueError(
                'EdgeSparsityHook: no optimizer holds the edge weights of '
                f'{missing}; they would never be penalised')

    @staticmethod
    def _edge_groups(optimizer, stages) -> List[Tuple[StageGraph, Dict]]:
        """(stage, the param group of its edges) for the stages whose edges
        this optimizer holds."""
        owner = {
            id(p): group
            for group in optimizer.param_groups
            for p in group['params']
        }
        return [(s, owner[id(s.edge_weights)]) for _, s in stages
                if id(s.edge_weights) in owner]

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._report_init_order(runner)
        if self._stages and self.budget is not None and \
                not self.budget.met():
            runner.logger.warning(
                f'EdgeSparsityHook: the budget ({self.budget.describe()}) '
                'was not met by the end of training' +
                ('; every edge left lies on the last path through its '
                 'stage (which the proximal step never cuts), so nothing '
                 'more could be pruned' if self.budget.stalled(
                 ) else '; lengthen the schedule or raise lambda_growth'))

    def _report_init_order(self, runner) -> None:
        """Say whether the data reordered the pruned edges, or whether the
        init's order alone (the smallest starts pruned first) could have
        chosen them: the latter is a topology the init decided."""
        if not self._stages:
            return
        order = self.pruned_against_init()
        if not order['pruned']:
            return
        later = order['out_of_init_order']
        runner.logger.info(
            f"EdgeSparsityHook: {order['pruned']} edges into blocks were "
            f'pruned, {later} of them starting larger than an edge that '
            'stayed' + ('' if later else
                        "; the init's order alone (smallest starts pruned "
                        'first) could have chosen them'))

    # -- every iteration -----------------------------------------------------
    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        lam = self.schedule.at(step)
        if self.budget is not None and self._stages:
            lam = self.budget.lambda_for(lam * self.budget.scale)
            runner.message_hub.update_info(LAMBDA_SCALE_KEY, self.budget.scale)
        self.lambda_now = lam

    def _proximal_step(self, groups) -> None:
        """After an optimizer step: the proximal step on every stage it
        updated, what the budget allows of it, and the record of this
        hook's change."""
        stages = [stage for stage, _ in groups]
        befores = [stage.edge_weights.detach().clone() for stage in stages]
        if self.budget is not None and self.budget.holding:
            self.budget.keep_regrowth_within(stages)
        elif self.lambda_now != 0.0:
            for stage, group in groups:
                proximal_l1_step(stage, group['lr'] * self.lambda_now,
                                 self.keep_output_scale)
            if self.budget is not None:
                self.budget.prune_no_further(stages, befores)
        for stage, was in zip(stages, befores):
            self.shifts.add(self._names[id(stage)],
                            stage.edge_weights.detach() - was)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self._stages or not self.every_n_train_iters(
                runner, self.interval):
            return
        hub = runner.message_hub
        hub.update_scalar('train/topo/lambda', self.lambda_now)
        if self.target_ratio is not None:
            hub.update_scalar('train/topo/target_ratio', self.target_ratio)
        if self.target_flops is not None:
            hub.update_scalar('train/topo/flops_ratio', self.flops_ratio())
            reference = self.budget.reference_ratio()
            if reference is None:
                hub.update_scalar('train/topo/target_flops', self.target_flops)
            else:
                hub.update_scalar('train/topo/flops_vs_reference', reference)
        if self.target_params is not None:
            hub.update_scalar('train/topo/params_vs_reference',
                              self.budget.params_vs_reference())
        if self.budget is not None:
            hub.update_scalar('train/topo/budget_stalled',
                              float(self.budget.stalled()))
        for key, value in {**self.edge_stats(), **self.edge_shifts()}.items():
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

    # -- what the hook reports -----------------------------------------------
    def budget_met(self) -> bool:
        """Whether every budget given (edges, FLOPs, parameters) is met
        now."""
        return self.budget is None or self.budget.met()

    def budget_stalled(self) -> bool:
        """Whether no edge of any trained stage can be pruned without
        cutting its stage (see :class:`EdgeBudget`)."""
        return self.budget is not None and self.budget.stalled()

    def flops_ratio(self) -> float:
        """The backbones' FLOPs, pruned at 0, as a fraction of dense
        (with a FLOPs budget)."""
        return self.budget.flops_ratio()

    def edge_stats(self) -> Dict[str, float]:
        """L1 norm, active edges and their ratio over the trained stages,
        in all and per stage, keyed by the stage's full module name
        (``backbone.layer1/active_edges``), so two backbones in one model
        keep their own."""
        return edge_stats(self._stages)

    def edge_shifts(self) -> Dict[str, float]:
        """Where the edges' movement since training began came from
        (:meth:`EdgeShiftRecord.edge_shifts`)."""
        return self.shifts.edge_shifts(self._stages)

    def edge_origins(self) -> Dict[str, torch.Tensor]:
        """Each trained stage's edge weights when training began (a copy),
        by the stage's module name."""
        return {name: w.clone() for name, w in self.shifts.origin.items()}

    def pruned_against_init(self) -> Dict[str, int]:
        """Whether the init alone could have chosen the pruned edges
        (:meth:`EdgeShiftRecord.pruned_against_init`)."""
        return self.shifts.pruned_against_init(self._stages)


def _is_reference_target(name: str, target, count_key: str, what: str) -> bool:
    """Whether ``target`` is ``dict(of=<backbone config>[, ratio=<r>])``
    or ``dict(<count_key>=<positive count>)``; a bad ratio is an error."""
    if not isinstance(target, dict):
        return False
    if set(target) in ({'of'}, {'of', 'ratio'}) and isinstance(
            target['of'], dict) and 'type' in target['of']:
        ratio = target.get('ratio', 1.0)
        if isinstance(ratio, (int, float)) and not isinstance(
                ratio, bool) and math.isfinite(ratio) and ratio > 0:
            return True
        raise ValueError(f'{name}: ratio must be a positive number (times '
                         f'the reference\'s {what}), got {ratio!r}')
    count = target.get(count_key)
    return list(target) == [count_key] and isinstance(
        count, (int, float)) and not isinstance(count, bool) and \
        math.isfinite(count) and count > 0


def _check_target_flops(target_flops) -> None:
    """A fraction in (0, 1], ``dict(of=<backbone config>)`` or
    ``dict(flops=<positive count>)``."""
    if target_flops is None or _is_reference_target(
            'target_flops', target_flops, 'flops', 'FLOPs'):
        return
    if isinstance(target_flops, (int, float)) and not isinstance(
            target_flops, bool) and 0 < target_flops <= 1:
        return
    raise ValueError(
        'target_flops must be a fraction in (0, 1] of the dense backbone\'s '
        'FLOPs, dict(of=<backbone config with a type>[, ratio=<r>]) or '
        f'dict(flops=<a positive number>), got {target_flops!r}')


def _check_target_params(target_params) -> None:
    """``dict(of=<backbone config>[, ratio=<r>])`` or
    ``dict(params=<positive count>)``."""
    if target_params is None or _is_reference_target(
            'target_params', target_params, 'params', 'parameters'):
        return
    raise ValueError(
        'target_params must be dict(of=<backbone config with a type>[, '
        f'ratio=<r>]) or dict(params=<a positive number>), got '
        f'{target_params!r}')
