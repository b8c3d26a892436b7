"""The layer the experiment tools (``tools/analysis_tools``) share: train
and test through the project's tools in a subprocess and read what they
logged (:mod:`.runs`), summarise seeds (:mod:`.stats`), and the tasks the
tools run on (:mod:`.tasks`). Models are built with
:func:`mmtopo.apis.init_model`."""
from .runs import Run, last_checkpoint, read_scalars, test_metrics, train_run
from .stats import mean_std, per_seed, spread
from .tables import print_table
from .tasks import TASKS, Task, data_options, schedule_options, train_and_score

__all__ = [
    'Run', 'TASKS', 'Task', 'data_options', 'last_checkpoint', 'mean_std',
    'per_seed', 'print_table', 'read_scalars', 'schedule_options', 'spread',
    'test_metrics', 'train_and_score', 'train_run'
]
