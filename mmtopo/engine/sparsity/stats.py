"""What the learnable edges look like: L1 norm and active edges."""
from typing import Dict, Sequence, Tuple

from ...models.layers import StageGraph


def edge_stats(stages: Sequence[Tuple[str, StageGraph]]) -> Dict[str, float]:
    """L1 norm, active (non-zero) edges and their ratio over ``(name,
    stage)`` pairs, in all and per stage keyed by the stage's name
    (``backbone.layer1/active_edges``)."""
    stats = {}
    total_l1, total_active, total_edges = 0.0, 0, 0
    for name, stage in stages:
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
