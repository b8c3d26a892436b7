"""The proximal step of ``lambda * sum |w|`` on one stage's edges."""
import torch
import torch.nn.functional as F

from ...models.graph import widest_path_edges
from ...models.layers import StageGraph


@torch.no_grad()
def proximal_l1_step(stage: StageGraph,
                     threshold: float,
                     keep_output_scale: bool = True) -> torch.Tensor:
    """Soft-threshold the stage's edge weights in place,
    ``w <- sign(w) * max(|w| - threshold, 0)``, and return them as they
    were before.

    With ``keep_output_scale`` the edges into the output node are scaled
    back to the absolute sum they had (:func:`restore_l1`): among those
    edges the step selects, it does not shrink. The next stage's norm
    layers make the loss blind to the overall scale of a stage's output,
    so shrinking it would only raise the edges' effective learning rate.

    The step never cuts the last path through the stage: if it would, the
    edges of the widest path before the step keep their values (a stage
    whose output is constant zero is a broken network, not a sparse one).
    """
    weights = stage.edge_weights
    before = weights.detach().clone()
    weights.copy_(F.softshrink(weights, threshold))
    if keep_output_scale:
        restore_l1(weights[:, -1], before[:, -1])
    if not stage.connects_input_to_output():
        _, path = widest_path_edges(len(stage) + 1, stage.edges(before))
        for i, j in path:
            weights[i, j] = before[i, j]
    return before


def restore_l1(column: torch.Tensor, before: torch.Tensor) -> None:
    """Scale ``column`` (in place) back to the absolute sum of ``before``;
    its zeros stay zeros."""
    now = column.abs().sum()
    if now > 0:
        column.mul_(before.abs().sum() / now)
