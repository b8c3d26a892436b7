"""Instance-aware wiring (Yuan et al., "Differentiable Dynamic Wirings for
Neural Networks", ICCV 2021): a router per node turns its static edge
weights into per-sample ones.

Node ``j`` of a dynamic stage computes ``x_j = sum_i g_ij(x) * w_ij * y_i``
per sample, where ``w`` are the static learnable weights (which the sparsity
hook prunes) and ``g_ij(x)`` the gates of :class:`EdgeRouter`. Every node
output ``y_i`` is pooled once (global average) and the pooled vectors are
reused by every later router.

Router design (and why):

* input: the pooled outputs of the node's candidate sources, concatenated
  in source order, each masked by ``w_ij != 0``. An edge the hook has
  pruned is then gone from the router too, so a deployed graph without that
  edge computes exactly the same gates;
* ``Linear(S * C, h) -> ReLU -> Linear(h, S)``, ``h = max(min_hidden,
  C // reduction)`` as in a squeeze-excitation block: the cost is two small
  matrix products per node and image, and the parameters grow with the
  number of candidates ``S`` (pruning an edge removes its share);
* gate ``g = 2 * sigmoid(z)`` in ``(0, 2)``: non-negative, bounded, and 1 at
  ``z = 0``. The last layer starts at zero, so at step 0 every gate is
  exactly 1 and the stage is exactly the static learnable one it extends
  (``init='residual'`` is then exactly the stock backbone). The first layer
  is drawn from its own fork of the random state, so building the routers
  does not change the initial weights of anything built after them;
* the router runs in fp32 with autocast off: the gates and their gradients
  stay in fp32 under bf16/fp16 training;
* ``threshold`` ``tau``: a gate below ``tau`` counts as 0 for that sample
  (the paper's instance-wise pruning). The gradient passes straight through
  the cut (the router receives the gradient the gate would get if it were
  open), so a gate that is closed for a sample can open again.
"""
import functools
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleDict
from torch import nn

from ...registry import MODELS, register_model
from ..topology import check_threshold, live_nodes, reaching_nodes
from .edge_functions import _RECIPE, edge_grad_scale, recompute_sums
from .traceable import _scale_grad, is_compiling

if TYPE_CHECKING:
    from .stage_graph import StageGraph

@register_model
class EdgeRouter(BaseModule):
    """The per-sample gates of one node's in-edges (see the module's
    docstring for the design).

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
        for name, value in (('in_channels', in_channels),
                            ('num_inputs', num_inputs),
                            ('reduction', reduction),
                            ('min_hidden', min_hidden)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'router.{name} must be a positive integer, '
                                 f'got {value!r}')
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
        z = self.gate(self.act(self.reduce(
            pooled.to(self.reduce.weight.dtype))))
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
    return MODELS.build(dict(cfg, in_channels=in_channels,
                             num_inputs=num_inputs, threshold=threshold))


def stage_channels(blocks: Sequence[nn.Module]) -> int:
    """Channels ``C`` of a stage's node outputs. A block after the first
    keeps the shape, so its first conv (in registration order) reads ``C``
    channels; a stage left with its first block only is run once on a
    small input to see."""
    for block in blocks[1:]:
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        if convs:
            return convs[0].in_channels
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
            str(j): build_router(cfg, channels, len(sources[j]), threshold)
            for j in routed})


class GatedSum(torch.autograd.Function):
    """``sum_k coef[:, k] * inputs[k]``, one coefficient per sample and
    input: a single op that mmengine's FLOP counter sees
    (``prim::PythonOp.GatedSum``), without keeping the sum for backward."""

    @staticmethod
    def forward(ctx, coef: torch.Tensor, *inputs: torch.Tensor):
        ctx.save_for_backward(coef, *inputs)
        return _gated_values(coef, inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        coef, *inputs = ctx.saved_tensors
        scale = coef.to(grad.dtype)
        grad_coef = None
        if ctx.needs_input_grad[0]:
            grad_coef = torch.stack(
                [(grad * x).sum(dim=tuple(range(1, x.dim())),
                                dtype=coef.dtype) for x in inputs],
                dim=1)
        grads = [grad * _per_sample(scale[:, k], grad)
                 if ctx.needs_input_grad[k + 1] else None
                 for k in range(len(inputs))]
        return (grad_coef, *grads)


def _gated_values(coef: torch.Tensor,
                  inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The sum of :class:`GatedSum`, computed (and recomputed in backward,
    :func:`.edge_functions.recompute_sums`) by this one function."""
    scale = coef.to(inputs[0].dtype)
    out = inputs[0] * _per_sample(scale[:, 0], inputs[0])
    for k, x in enumerate(inputs[1:], 1):
        out.addcmul_(_per_sample(scale[:, k], x), x)
    return out


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.dim() - 1)))


def gated_sum(coef: torch.Tensor,
              inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """:class:`GatedSum`; for the compiler the same sum as plain autograd
    ops, which it traces and fuses."""
    if is_compiling():
        return _gated_values(coef, inputs)
    return GatedSum.apply(coef, *inputs)


def pool(y: torch.Tensor) -> torch.Tensor:
    """A node output's pooled vector ``(N, C)`` (global average)."""
    return F.adaptive_avg_pool2d(y, 1).flatten(1)


def dynamic_forward(stage: 'StageGraph', x: torch.Tensor) -> torch.Tensor:
    """The output of a stage with routers (see the module docstring).

    As in the static forward, nodes without an active input (and, outside
    training, blocks that reach nothing) are not run: the weights are read
    on the host for that, except under ``torch.compile``, where every
    block runs and a dead one is switched off by a factor 0
    (:func:`.traceable.traceable_forward`).
    """
    weights = stage.edge_weights
    first = getattr(stage, '0')(x)
    learning = (torch.is_grad_enabled() and stage.training
                and weights.requires_grad)
    if stage.learnable:
        scale = edge_grad_scale(first, stage.edge_grad)
        if scale != 1.0:
            weights = _scale_grad(weights, scale)
        if torch.is_grad_enabled() and not stage.training:
            weights = torch.where(weights != 0, weights, weights.detach())
    last = len(stage)
    compiling = is_compiling()
    keep: Optional[List[bool]] = None
    values = None
    if not compiling:
        values = stage._preread or stage.edge_weights.detach().tolist()
        edges = stage.edges(values)
        keep = live_nodes(last + 1, edges)
        if not learning:
            keep = [a and b for a, b in
                    zip(keep, reaching_nodes(last + 1, edges))]
    outputs: Dict[int, torch.Tensor] = {0: first}
    pooled: Dict[int, torch.Tensor] = {}
    alive = {0: torch.ones((), dtype=torch.bool, device=x.device)}
    for j in range(1, last + 1):
        sources = [i for i in stage._sources[j] if i in outputs and (
            learning or keep is None or values[i][j] != 0.0)]
        if not sources or (keep is not None and not keep[j]):
            if j == last:  # every path is cut: constant zero
                return torch.zeros_like(first)
            continue  # a removed node
        coef = weights[:, j][_index(weights, sources)].unsqueeze(0)  # (1, S)
        if str(j) in stage.routers:
            coef = coef * _gates(stage, j, sources, outputs, pooled, weights,
                                 values)
        else:
            coef = coef.expand(first.shape[0], -1)
        node_in = gated_sum(coef, [outputs[i] for i in sources])
        if compiling:
            active = torch.stack([(weights[i, j] != 0) & alive[i]
                                  for i in sources]).any()
            node_in = node_in * active
            alive[j] = active
        if j == last:
            return node_in
        block = getattr(stage, str(j))
        if compiling or not torch.is_grad_enabled():
            outputs[j] = block(node_in)
        else:
            # the block's first layers save their input for backward: keep
            # the recipe instead and rebuild the sum then (as the static
            # stage does)
            inputs = [outputs[i] for i in sources]
            setattr(node_in, _RECIPE,
                    functools.partial(_gated_values, coef.detach(), inputs))
            with recompute_sums():
                outputs[j] = block(node_in)
            delattr(node_in, _RECIPE)
        if compiling:
            outputs[j] = outputs[j] * alive[j]
    raise AssertionError('a checked topology always reaches its output')


def _gates(stage: 'StageGraph', j: int, sources: List[int],
           outputs: Dict[int, torch.Tensor], pooled: Dict[int, torch.Tensor],
           weights: torch.Tensor,
           values: Optional[List[list]]) -> torch.Tensor:
    """Node ``j``'s gates ``(N, len(sources))``, from the pooled outputs of
    all its candidates, each masked by its edge being non-zero (a node not
    run, or an edge known on the host to be zero, gives zeros without
    pooling)."""
    candidates = stage._sources[j]
    feats, like = [], None
    for i in candidates:
        if i in outputs and (values is None or values[i][j] != 0.0):
            if i not in pooled:
                pooled[i] = pool(outputs[i])
            like = pooled[i]
            if values is None:  # traced: the mask on the device
                feats.append(pooled[i] * (weights[i, j] != 0).to(like.dtype))
            else:  # read on the host: non-zero here
                feats.append(pooled[i])
        else:
            feats.append(None)
    # a routed node runs only with an active input, so ``like`` is set
    feats = [torch.zeros_like(like) if f is None else f for f in feats]
    gates = stage.routers[str(j)](torch.cat(feats, dim=1))
    if sources != candidates:
        gates = gates[:, _index(gates, [candidates.index(i)
                                        for i in sources])]
    return gates


_INDEX_CACHE: Dict[tuple, torch.Tensor] = {}


def _index(like: torch.Tensor, positions: List[int]) -> torch.Tensor:
    """``positions`` as an index tensor on ``like``'s device, made once
    (not cached under the compiler: a tensor made while tracing must not
    outlive the trace)."""
    if is_compiling():
        return torch.tensor(positions, device=like.device)
    key = (like.device, tuple(positions))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = torch.tensor(positions, device=like.device)
    return _INDEX_CACHE[key]


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
    state[prefix + 'reduce.weight'] = weight.view(
        hidden, len(theirs), -1)[:, keep].reshape(hidden, -1).clone()
    state[prefix + 'gate.weight'] = state[prefix + 'gate.weight'][keep].clone()
    state[prefix + 'gate.bias'] = state[prefix + 'gate.bias'][keep].clone()
