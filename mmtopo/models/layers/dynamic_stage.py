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
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..topology import StageTopology
from .compiling import is_compiling
from .edge_functions import gated_sum, gated_values, index_tensor, run_on_sum
from .router import build_routers, pool, slice_router_state
from .stage_graph import StageGraph


class DynamicStageGraph(StageGraph):
    """A stage graph whose routed nodes gate their in-edges per sample
    (see the module docstring). The rewiring builds one for every stage
    whose topology routes a node; the arguments are
    :class:`StageGraph`'s.

    Its sums are plain autograd (:class:`~.edge_functions.GatedSum`), not
    the fan-outs of the static stage: the gates differ per sample, so an
    edge's gradient is a per-sample product anyway.
    """

    def __init__(self,
                 blocks: Sequence[nn.Module],
                 topology: StageTopology,
                 graph_mismatch: str = 'error',
                 init_blocks: bool = True,
                 edge_grad: str = 'rms',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 channel_dim: int = 1):
        super().__init__(
            blocks,
            topology,
            graph_mismatch=graph_mismatch,
            init_blocks=init_blocks,
            edge_grad=edge_grad,
            init_cfg=init_cfg,
            channel_dim=channel_dim)
        self.router_cfg = dict(topology.router)
        self.threshold = topology.threshold
        # an mmengine ModuleDict, so init_weights reaches the routers
        self.routers = build_routers(
            [b for k, b in enumerate(blocks) if k not in self.removed],
            self._sources, topology.routed, topology.router,
            topology.threshold)

    @property
    def dynamic(self) -> bool:
        return True

    def init_weights(self) -> None:
        super().init_weights()
        # the gates start at 1 all the same (a topology backbone sets its
        # routers aside during its own init and initialises them after)
        routers = self._modules.get('routers')
        if routers is not None and not self.init_blocks:
            routers.init_weights()

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        """The eager forward: nodes without an active input (and, outside
        training, blocks that reach nothing) are not run. ``args`` go to
        every block after its input."""
        if is_compiling():
            return self.forward_traceable(x, *args)
        first = self[0](x, *args)
        weights = self.traced_weights(first)
        learning = self.is_learning()
        values = self.host_weights()
        run = self.nodes_to_run(values, learning)
        outputs: Dict[int, torch.Tensor] = {0: first}
        pooled: Dict[int, torch.Tensor] = {}
        last = len(self)
        for j in range(1, last + 1):
            if not run[j]:
                if j == last:  # every path is cut: constant zero
                    self.report_cut()
                    return torch.zeros_like(first)
                continue  # a removed node
            sources = [
                i for i in self._sources[j]
                if i in outputs and (learning or values[i][j] != 0.0)
            ]
            coef = self._coefficients(weights, j, sources, outputs, pooled,
                                      values, len(first))
            inputs = [outputs[i] for i in sources]
            node_in = gated_sum(coef, inputs)
            if j == last:
                return node_in
            if torch.is_grad_enabled():
                # the block's first layers save their input for backward:
                # keep the recipe instead and rebuild the sum then
                outputs[j] = run_on_sum(
                    self[j], node_in,
                    functools.partial(gated_values, coef.detach(), inputs),
                    *args)
            else:
                outputs[j] = self[j](node_in, *args)
        raise AssertionError('a checked topology always reaches its output')

    def forward_traceable(self, x: torch.Tensor, *args) -> torch.Tensor:
        """The same function with the weights kept on the device (what
        ``torch.compile`` traces): every block runs, and a dead one is
        switched off by a factor 0, as in
        :meth:`StageGraph.forward_traceable`."""
        first = getattr(self, '0')(x, *args)
        weights = self.traced_weights(first)
        outputs: Dict[int, torch.Tensor] = {0: first}
        pooled: Dict[int, torch.Tensor] = {}
        alive = {0: torch.ones((), dtype=torch.bool, device=x.device)}
        last = len(self)
        for j in range(1, last + 1):
            sources = [i for i in self._sources[j] if i in outputs]
            if not sources:  # a removed node
                continue
            coef = self._coefficients(weights, j, sources, outputs, pooled,
                                      None, len(first))
            active = self.active_on_device(weights, sources, j, alive)
            node_in = gated_sum(coef, [outputs[i] for i in sources]) * active
            if j == last:
                return node_in
            alive[j] = active
            outputs[j] = getattr(self, str(j))(node_in, *args) * active
        raise AssertionError('a checked topology always reaches its output')

    def _coefficients(self, weights: torch.Tensor, j: int, sources: List[int],
                      outputs: Dict[int, torch.Tensor],
                      pooled: Dict[int,
                                   torch.Tensor], values: Optional[List[list]],
                      batch: int) -> torch.Tensor:
        """``(N, S)``: node ``j``'s static weights from ``sources``, times
        its gates where it has a router."""
        coef = weights[:, j][index_tensor(sources, weights.device)]
        coef = coef.unsqueeze(0)
        if str(j) in self.routers:
            return coef * self._gates(j, sources, outputs, pooled, weights,
                                      values)
        return coef.expand(batch, -1)

    def _gates(self, j: int, sources: List[int], outputs: Dict[int,
                                                               torch.Tensor],
               pooled: Dict[int, torch.Tensor], weights: torch.Tensor,
               values: Optional[List[list]]) -> torch.Tensor:
        """Node ``j``'s gates ``(N, len(sources))``, from the pooled outputs
        of all its candidates, each masked by its edge being non-zero (a
        node not run, or an edge known on the host to be zero, gives zeros
        without pooling; ``values`` None: traced, the mask on the
        device)."""
        candidates = self._sources[j]
        feats, like = [], None
        for i in candidates:
            if i in outputs and (values is None or values[i][j] != 0.0):
                if i not in pooled:
                    pooled[i] = pool(outputs[i], self.channel_dim)
                like = pooled[i]
                if values is None:
                    feats.append(pooled[i] *
                                 (weights[i, j] != 0).to(like.dtype))
                else:  # read on the host: non-zero here
                    feats.append(pooled[i])
            else:
                feats.append(None)
        # a routed node runs only with an active input, so ``like`` is set
        feats = [torch.zeros_like(like) if f is None else f for f in feats]
        gates = self.routers[str(j)](torch.cat(feats, dim=1))
        if sources != candidates:
            gates = gates[:,
                          index_tensor([candidates.index(i)
                                        for i in sources], gates.device)]
        return gates

    def adapt_routers(self, state_dict: dict, prefix: str,
                      their_mask: torch.Tensor) -> None:
        """Rewrite, in ``state_dict``, the routers at ``prefix`` of a graph
        with edges ``their_mask`` into this graph's: each reads the
        candidates it has left, the others' inputs and gates go."""
        mask = their_mask.bool().cpu()
        if mask.shape != self.edge_mask.shape:
            return  # the graph's own adaptation names the mismatch
        for j in self.routers:
            if f'{prefix}routers.{j}.reduce.weight' in state_dict:
                slice_router_state(
                    state_dict, f'{prefix}routers.{j}.',
                    mask[:, int(j)].nonzero().flatten().tolist(),
                    self._sources[int(j)])
