"""The parts of the edge sparsity regularizer, each usable without a
runner: the lambda schedule, the proximal step, the budget controller,
the record of how far the edges moved, and the edge statistics.
:class:`~mmtopo.engine.EdgeSparsityHook` runs them in a training loop."""
from .budget import EdgeBudget, only_its_last_path
from .proximal import proximal_l1_step, restore_l1
from .schedule import LambdaSchedule
from .shifts import EdgeShiftRecord
from .stats import edge_stats

__all__ = [
    'EdgeBudget', 'EdgeShiftRecord', 'LambdaSchedule', 'edge_stats',
    'only_its_last_path', 'proximal_l1_step', 'restore_l1'
]
