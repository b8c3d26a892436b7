"""Where the edges' movement comes from: the optimizer (the data) or the
sparsity step. A run whose edges moved by the sparsity step alone learned
no topology: its graph is the init minus a uniform shrinkage."""
from typing import Dict, Sequence, Tuple

import torch

from ...models.layers import StageGraph

# message hub runtime info (checkpoints carry it): each stage's edges when
# training began, and what the sparsity step has moved them by since
EDGE_ORIGIN_KEY = 'topo/edge_origin'
EDGE_PROX_KEY = 'topo/edge_prox_shift'

NamedStages = Sequence[Tuple[str, StageGraph]]


class EdgeShiftRecord:
    """Per stage, its edges when training began and the sum of every change
    the sparsity step made to them since, kept in a message hub's runtime
    info so that a resumed run continues them."""

    def __init__(self):
        self.origin: Dict[str, torch.Tensor] = {}
        self.prox_shift: Dict[str, torch.Tensor] = {}

    def start(self, stages: NamedStages, hub, resumed: bool) -> None:
        """Start the record (or, ``resumed``, continue the one in
        ``hub``). A stage the hub has no record of, or one of another
        shape (a ``load_from`` of another model), starts here."""
        origin = (hub.get_info(EDGE_ORIGIN_KEY) or {}) if resumed else {}
        prox = (hub.get_info(EDGE_PROX_KEY) or {}) if resumed else {}
        self.origin, self.prox_shift = {}, {}
        for name, stage in stages:
            weights = stage.edge_weights.detach()
            if name in origin and origin[name].shape == weights.shape:
                # copies: the loaded tensors may be another hook's
                self.origin[name] = origin[name].to(weights, copy=True)
                self.prox_shift[name] = prox[name].to(weights, copy=True)
            else:
                self.origin[name] = weights.clone()
                self.prox_shift[name] = torch.zeros_like(weights)
        # the hub holds these very tensors: a checkpoint saves them as they
        # are at that moment
        hub.update_info(EDGE_ORIGIN_KEY, self.origin)
        hub.update_info(EDGE_PROX_KEY, self.prox_shift)

    def add(self, name: str, change: torch.Tensor) -> None:
        """Record a change the sparsity step made to stage ``name``."""
        self.prox_shift[name].add_(change)

    def edge_shifts(self, stages: NamedStages) -> Dict[str, float]:
        """Mean absolute movement over the edges since training began, in
        all and per stage: ``prox_shift``, the sparsity step's;
        ``grad_shift``, the rest of ``w - w_start`` (the optimizer's steps:
        gradient, momentum, any weight decay). The two add up to the net
        change exactly."""
        stats, grad_total, prox_total, count = {}, 0.0, 0.0, 0
        for name, stage in stages:
            mask = stage.edge_mask
            prox = self.prox_shift[name][mask]
            grad = (
                stage.edge_weights.detach()[mask] - self.origin[name][mask] -
                prox)
            stats[f'{name}/grad_shift'] = float(grad.abs().mean())
            stats[f'{name}/prox_shift'] = float(prox.abs().mean())
            grad_total += float(grad.abs().sum())
            prox_total += float(prox.abs().sum())
            count += prox.numel()
        stats['grad_shift'] = grad_total / max(count, 1)
        stats['prox_shift'] = prox_total / max(count, 1)
        return stats

    def pruned_against_init(self, stages: NamedStages) -> Dict[str, int]:
        """Whether the init alone could have chosen the pruned edges.

        ``pruned``: the blocks' in-edges now at zero.
        ``out_of_init_order``: those of them that started larger (in
        magnitude) than an in-edge of their stage that is still active.
        Shrinkage alone prunes the smallest starts first, so it leaves 0
        here; only the gradient reorders edges. The edges into a stage's
        output node are left out (the proximal step keeps their scale).
        """
        pruned, out_of_order = 0, 0
        for name, stage in stages:
            mask = stage.edge_mask.clone()
            mask[:, -1] = False
            start = self.origin[name][mask].abs()
            zero = stage.edge_weights.detach()[mask] == 0
            pruned += int(zero.sum())
            if (~zero).any():
                smallest_kept = start[~zero].min()
                out_of_order += int((zero & (start > smallest_kept)).sum())
        return dict(pruned=pruned, out_of_init_order=out_of_order)
