"""The router of a dynamic (instance-aware) stage node: per-sample gates
of its in-edges (:class:`~.dynamic_stage.DynamicStageGraph` has the
design), and what builds, sizes and adapts routers."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleDict
from torch import nn

from ...registry import MODELS, register_model
from ...utils.validation import check_int
from ..topology import check_threshold


@register_model
class EdgeRouter(BaseModule):
    """The per-sample gates of one node's in-edges
    (:mod:`.dynamic_stage` gives the design).

    Args:
        in_channels: channels ``C`` of the stage's node outputs.
        num_inputs: candidate sources ``S`` of the node.
        reduction: ``C // reduction`` hidden units ...
        min_hidden: ... but at least this many.
        threshold: gates below it count as 0 for that sample (``>= 0``).
        init_cfg: mmengine initialisation of the router; whatever it does,
            the gate layer is zeroed after it, so the gates start at 1.
    """

    def __init__(self,
                 in_channels: int,
                 num_inputs: int,
                 reduction: int = 16,
                 min_hidden: int = 8,
                 threshold: float = 0.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('num_inputs',
                                                           num_inputs),
                            ('reduction', reduction), ('min_hidden',
                                                       min_hidden)):
            check_int(f'router.{name}', value, min_value=1)
        check_threshold(threshold, 'EdgeRouter', field='threshold')
        self.in_channels = in_channels
        self.num_inputs = num_inputs
        self.threshold = float(threshold)
        hidden = max(min_hidden, in_channels // reduction)
        self.reduce = nn.Linear(num_inputs * in_channels, hidden)
        self.act = nn.ReLU(inplace=True)
        self.gate = nn.Linear(hidden, num_inputs)
        self._zero_gate()

    def _zero_gate(self) -> None:
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def init_weights(self) -> None:
        super().init_weights()
        self._zero_gate()

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(N, S * C)`` masked pooled sources -> ``(N, S)`` gates, in
        the router's precision (fp32) also under autocast."""
        if _autocast_enabled(pooled.device.type):
            with torch.autocast(pooled.device.type, enabled=False):
                return self._gates(pooled)
        return self._gates(pooled)

    def _gates(self, pooled: torch.Tensor) -> torch.Tensor:
        z = self.gate(
            self.act(self.reduce(pooled.to(self.reduce.weight.dtype))))
        gates = 2.0 * torch.sigmoid(z)
        if self.threshold > 0:
            kept = gates * (gates >= self.threshold)
            gates = gates + (kept - gates).detach()  # straight through
        return gates


def _autocast_takes_device() -> bool:
    try:
        torch.is_autocast_enabled('cpu')
    except TypeError:  # torch before 2.4
        return False
    return True


# asked once here: a TypeError inside a traced call would not be caught
_AUTOCAST_TAKES_DEVICE = _autocast_takes_device()


def _autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``. (Entering an autocast
    context that changes nothing still breaks torch 2.1's dynamo graph.)"""
    if _AUTOCAST_TAKES_DEVICE:
        return torch.is_autocast_enabled(device_type)
    if device_type == 'cpu':
        return torch.is_autocast_cpu_enabled()
    return torch.is_autocast_enabled()


def build_router(cfg: dict, in_channels: int, num_inputs: int,
                 threshold: float) -> EdgeRouter:
    """A router from its config (``type`` defaults to ``EdgeRouter``)."""
    cfg = dict(cfg)
    cfg.setdefault('type', 'EdgeRouter')
    for key in ('in_channels', 'num_inputs', 'threshold'):
        if key in cfg:
            raise ValueError(f'topology.router sets {key!r}, which the stage '
                             'decides (the threshold is topology.threshold)')
    return MODELS.build(
        dict(
            cfg,
            in_channels=in_channels,
            num_inputs=num_inputs,
            threshold=threshold))


def stage_channels(blocks: Sequence[nn.Module]) -> int:
    """Channels ``C`` of a stage's node outputs. A block after the first
    keeps the shape, so its first conv or linear layer (in registration
    order) reads ``C`` channels; a stage left with its first block only is
    run once on a small input to see."""
    for block in blocks[1:]:
        for m in block.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels
            if isinstance(m, nn.Linear):
                return m.in_features
    first = blocks[0]
    convs = [m for m in first.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f'cannot tell the channels of a stage of '
                         f'{type(first).__name__}: it has no Conv2d')
    mode = first.training
    first.eval()
    with torch.no_grad():
        out = first(torch.zeros(1, convs[0].in_channels, 16, 16))
    first.train(mode)
    return out.shape[1]


def build_routers(blocks: Sequence[nn.Module], sources: List[List[int]],
                  routed: Sequence[int], cfg: dict,
                  threshold: float) -> ModuleDict:
    """One router per routed node, drawn from a fork of the random state so
    that everything built afterwards gets the weights it gets without
    routers (the stock backbone's, the stock neck's, ...)."""
    channels = stage_channels(blocks)
    with torch.random.fork_rng(devices=[]):
        return ModuleDict({
            str(j):
            build_router(cfg, channels, len(sources[j]), threshold)
            for j in routed
        })


def pool(y: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """A node output's pooled vector ``(N, C)`` (global average): over
    ``H, W`` of ``(N, C, H, W)`` maps, over the tokens of ``(N, L, C)``
    (``channel_dim=-1``)."""
    if channel_dim == 1:
        return F.adaptive_avg_pool2d(y, 1).flatten(1)
    return y.mean(dim=1)


def slice_router_state(state: dict, prefix: str, theirs: List[int],
                       ours: List[int]) -> None:
    """Rewrite the router at ``prefix`` (``...routers.<j>.``) in ``state``
    from candidate sources ``theirs`` to ``ours`` (a subset): the columns
    and gate rows of the candidates that are gone are dropped. Exact when
    those candidates' edges are zero (their inputs were masked out)."""
    if ours == theirs:
        return
    missing = [i for i in ours if i not in theirs]
    if missing:
        raise ValueError(f'{prefix.rstrip(".")}: the checkpoint router has '
                         f'no input from node(s) {missing} (it reads '
                         f'{theirs}); it cannot be adapted to read {ours}')
    keep = torch.tensor([theirs.index(i) for i in ours])
    weight = state[prefix + 'reduce.weight']
    hidden = weight.shape[0]
    state[prefix + 'reduce.weight'] = weight.view(hidden, len(theirs),
                                                  -1)[:, keep].reshape(
                                                      hidden, -1).clone()
    state[prefix + 'gate.weight'] = state[prefix + 'gate.weight'][keep].clone()
    state[prefix + 'gate.bias'] = state[prefix + 'gate.bias'][keep].clone()
