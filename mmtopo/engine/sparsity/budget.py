"""A budget for the learned graph, met by growing lambda: a fraction of
the edges left active, or of the backbone's FLOPs, or the FLOPs and the
parameters of a reference backbone (the model one would otherwise
deploy)."""
import copy
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import parameter_count
from mmengine.registry import MODELS
from torch import nn

from ...models import topology_backbones
from ...models.graph import bridge_edges
from ...models.layers import StageGraph
from ...utils.complexity import BackboneCosts, count_flops
from .stats import edge_stats

# message hub runtime info (checkpoints carry it): lambda's growth so far
LAMBDA_SCALE_KEY = 'topo/lambda_scale'

NamedStages = Sequence[Tuple[str, StageGraph]]


def reference_count(target: dict, count_key: str,
                    measure: Callable[[nn.Module], float]) -> float:
    """The count a reference target names, before its ``ratio``: given
    directly (``dict(<count_key>=N)``), or ``measure`` of the backbone
    built from ``dict(of=<config>)`` in the current registry scope."""
    if count_key in target:
        return float(target[count_key])
    return float(measure(MODELS.build(copy.deepcopy(target['of']))))


def flops_at(input_shape: Sequence[int]) -> Callable[[nn.Module], float]:
    """A ``measure`` for :func:`reference_count`: FLOPs at one image of
    ``input_shape``."""
    return lambda backbone: count_flops(backbone,
                                        (torch.zeros(1, *input_shape), ))


def params_of(backbone: nn.Module) -> float:
    """A ``measure`` for :func:`reference_count`: mmengine's parameter
    count."""
    return parameter_count(backbone)['']


class EdgeBudget:
    """Grows lambda until the pruned graph meets every target given, then
    holds the graph within them.

    Until the budget is met, lambda is multiplied by ``growth`` after every
    iteration it applies in. Once met, the penalty pauses; edges at zero
    may grow back only as far as the budget allows (a step that would
    break it leaves them at zero); the step that meets it zeroes only the
    weakest edges it needs, so one step's many crossings do not overshoot.

    Args:
        target_ratio: the fraction of edges left active, in (0, 1].
        target_flops: the FLOPs the pruned backbone may keep (every block
            and edge of the pruned graph computed), counted by mmengine's
            FLOP counter at ``flops_input_shape``: a fraction of the dense
            backbone's (every edge active), in (0, 1]; or
            ``dict(of=<backbone config>)``, the FLOPs of that backbone (e.g.
            the stock ResNet-18 a supernet is pruned to), counted the same
            way, or ``dict(of=<backbone config>, ratio=<r>)``, ``r`` times
            those; or ``dict(flops=<count>)``, a number of FLOPs.
        growth: lambda's factor per iteration while the budget is unmet.
        flops_input_shape: ``(C, H, W)`` the FLOPs are measured at, once.
        target_params: the parameters the pruned backbone may keep (its
            blocks; the deployed graph's fixed edges are buffers):
            ``dict(of=<backbone config>[, ratio=<r>])``, ``r`` times that
            backbone's, or ``dict(params=<count>)``. At a small input a
            FLOPs budget alone can keep wide blocks that cost few FLOPs
            but many weights.
    """

    def __init__(self,
                 target_ratio: Optional[float] = None,
                 target_flops: Union[None, float, dict] = None,
                 growth: float = 1.01,
                 flops_input_shape: Sequence[int] = (3, 224, 224),
                 target_params: Optional[dict] = None):
        self.target_ratio = target_ratio
        self.target_flops = target_flops
        self.target_params = target_params
        self.growth = growth
        self.flops_input_shape = tuple(flops_input_shape)
        self.scale = 1.0  # lambda's growth so far
        self.holding = False  # met: zero edges regrow within it only
        self.stages: List[Tuple[str, StageGraph]] = []
        self.costs: List[Tuple[nn.Module, BackboneCosts]] = []
        self.reference_flops: Optional[float] = None
        self.flops_limit: Optional[float] = None  # what met() holds it to
        self.reference_params: Optional[float] = None
        self.params_limit: Optional[float] = None
        self._held: List[torch.Tensor] = []

    def setup(self,
              model: nn.Module,
              stages: NamedStages,
              scale: float = 1.0) -> None:
        """Watch ``stages`` (the trained ones) of ``model``, with lambda
        grown by ``scale`` so far; measure the FLOPs of its topology
        backbones (and of a reference backbone) once when there is a FLOPs
        target."""
        self.stages = list(stages)
        self.scale = scale
        if self.target_flops is None and self.target_params is None:
            return
        self.costs = [(m, BackboneCosts(m, self.flops_input_shape))
                      for _, m in topology_backbones(model)
                      if any(s.learnable for s in m.stage_graphs)]
        for name, target in (('target_flops', self.target_flops),
                             ('target_params', self.target_params)):
            if isinstance(target, dict) and len(self.costs) != 1:
                raise ValueError(
                    f'{name}={target!r} is one backbone\'s cost, but the '
                    f'model has {len(self.costs)} topology backbones with '
                    'learnable edges; give a fraction of the FLOPs instead')
        if self.target_params is not None:
            self._set_params_limit()
        if not isinstance(self.target_flops, dict):
            return
        self.reference_flops = reference_count(
            self.target_flops, 'flops', flops_at(self.flops_input_shape))
        self.flops_limit = self.reference_flops * self.target_flops.get(
            'ratio', 1.0)

    def _set_params_limit(self) -> None:
        """The reference's parameters (built from its config, or given)
        times the target's ratio; a graph with routers is refused (its
        parameters are not counted)."""
        _, costs = self.costs[0]
        costs.params([g for m, _ in self.costs for g in m.topology_graphs()
                      ])  # refuses routers here, before training
        self.reference_params = reference_count(self.target_params, 'params',
                                                params_of)
        self.params_limit = self.reference_params * self.target_params.get(
            'ratio', 1.0)

    def lambda_for(self, lam: float) -> float:
        """The lambda to apply this iteration, for the schedule's ``lam``
        (already times :attr:`scale`): 0 while the budget holds; otherwise
        ``lam``, and lambda grows for the next iteration."""
        self.holding = lam > 0 and self.met()
        if self.holding:
            self._held = [s.edge_weights.detach() == 0 for _, s in self.stages]
            return 0.0
        if lam > 0:
            self.scale *= self.growth
        return lam

    def met(self) -> bool:
        """Whether every target given is met now."""
        if self.target_ratio is not None and \
                edge_stats(self.stages)['active_ratio'] > self.target_ratio:
            return False
        if self.params_limit is not None and \
                self.params() > self.params_limit:
            return False
        if self.target_flops is None:
            return True
        if self.reference_flops is None:
            return self.flops_ratio() <= self.target_flops
        return self.flops() <= self.flops_limit

    def stalled(self) -> bool:
        """Whether no edge of any stage can be pruned without cutting its
        stage: every one left lies on the stage's last path."""
        return all(only_its_last_path(stage) for _, stage in self.stages)

    def flops(self) -> float:
        """The backbones' FLOPs, pruned at 0."""
        return sum(costs.flops(m.topology_graphs()) for m, costs in self.costs)

    def params(self) -> float:
        """The backbone's parameters, pruned at 0 (as deployed)."""
        return sum(
            costs.params(m.topology_graphs()) for m, costs in self.costs)

    def params_vs_reference(self) -> Optional[float]:
        """:meth:`params` as a fraction of the reference's, with a
        parameter target."""
        if self.reference_params is None:
            return None
        return self.params() / self.reference_params

    def flops_ratio(self) -> float:
        """:meth:`flops` as a fraction of the dense backbones'."""
        return self.flops() / sum(costs.total for _, costs in self.costs)

    def reference_ratio(self) -> Optional[float]:
        """:meth:`flops` as a fraction of the reference's, if one was
        given."""
        if self.reference_flops is None:
            return None
        return self.flops() / self.reference_flops

    @torch.no_grad()
    def keep_regrowth_within(self, stages: Sequence[StageGraph]) -> None:
        """While holding: if the step just taken broke the budget, the
        edges that were at zero go back to zero."""
        if self.met():
            return
        held = {id(s): h for (_, s), h in zip(self.stages, self._held)}
        for stage in stages:
            stage.edge_weights.masked_fill_(held[id(stage)], 0.0)

    @torch.no_grad()
    def prune_no_further(self, stages: Sequence[StageGraph],
                         befores: Sequence[torch.Tensor]) -> None:
        """After the step that meets the budget: of the edges it zeroed,
        the strongest (by magnitude before the step) get their values back
        as long as the budget stays met."""
        if not self.met():
            return
        zeroed = [
            (float(before[i, j].abs()), k, i, j)
            for k, (stage, before) in enumerate(zip(stages, befores))
            for i, j in (before.bool()
                         & ~stage.edge_weights.bool()).nonzero().tolist()
        ]
        for _, k, i, j in sorted(zeroed, reverse=True):
            weights = stages[k].edge_weights
            weights[i, j] = befores[k][i, j]
            if not self.met():
                weights[i, j] = 0.0
                return

    def describe_target(self) -> str:
        """The targets as given."""
        return ', '.join(
            f'{name}={value!r}'
            for name, value in (('target_ratio', self.target_ratio),
                                ('target_flops', self.target_flops),
                                ('target_params', self.target_params))
            if value is not None)

    def describe(self) -> str:
        """The targets and where the graph stands against them."""
        parts = []
        if self.target_ratio is not None:
            parts.append(f'target_ratio={self.target_ratio}, active '
                         f"{edge_stats(self.stages)['active_ratio']:.3f}")
        if self.target_flops is not None:
            now = (f'{self.reference_ratio():.4f}x the reference'
                   if self.reference_flops else f'{self.flops_ratio():.3f}')
            parts.append(f'target_flops={self.target_flops}, now {now}')
        if self.target_params is not None:
            parts.append(f'target_params={self.target_params}, now '
                         f'{self.params_vs_reference():.4f}x the reference')
        return '; '.join(parts)


def only_its_last_path(stage: StageGraph) -> bool:
    """Whether every non-zero edge of ``stage`` lies on every path through
    it, so that zeroing any would cut the stage."""
    edges = stage.edges()
    active = sum(1 for _, _, w in edges if w != 0)
    return len(bridge_edges(len(stage) + 1, edges)) == active
