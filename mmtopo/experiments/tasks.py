"""The tasks the experiment tools train on: configs per wiring, the
metric, the data set (generated on first use) and its splits."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .runs import test_metrics, train_run


@dataclass(frozen=True)
class Task:
    """One task: a config per wiring and how to score it.

    Attributes:
        configs: config file per wiring name (``learnable``, ``residual``,
            ...), relative to the repository.
        metric: the key its evaluator logs (``coco/bbox_mAP``).
        data: the default data folder; ``dataset``: the set
            :func:`mmtopo.datasets.ensure_dataset` makes there.
        input_shape: ``(C, H, W)`` the costs are measured at.
        complexity_of: ``'backbone'`` (a detector's forward needs data
            samples) or ``'model'``.
        test_split: whether the set has a held-out test split (scored
            through tools/test.py) besides val.
        options: ``key=value`` options every run of the task takes.
    """
    configs: Dict[str, str]
    metric: str
    data: str
    dataset: str
    input_shape: Tuple[int, int, int]
    complexity_of: str = 'model'
    test_split: bool = False
    options: List[str] = field(default_factory=list)

    @property
    def detection(self) -> bool:
        return self.dataset.startswith('toy_coco')


def toy_detection_task(dataset: str = 'toy_coco',
                       data: str = 'data/toy_coco',
                       **configs) -> Task:
    """A task on a generated COCO-format set: bbox mAP on val and the
    held-out test split, the backbone's costs at the set's 128x128."""
    return Task(
        configs=configs,
        metric='coco/bbox_mAP',
        data=data,
        dataset=dataset,
        input_shape=(3, 128, 128),
        complexity_of='backbone',
        test_split=True)


def schedule_options(epochs: int) -> List[str]:
    """Options for a digits config trained ``epochs`` epochs: its length,
    its one validation and checkpoint at the end, its cosine period."""
    return [
        f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
        f'param_scheduler.T_max={epochs}',
        f'default_hooks.checkpoint.interval={epochs}'
    ]


DIGITS_CONFIGS = dict(
    learnable='configs/cls/topo_resnet18_cifar_digits.py',
    residual='configs/cls/topo_resnet18_cifar_digits_residual.py',
    complete='configs/cls/topo_resnet18_cifar_digits_complete.py',
    random='configs/cls/topo_resnet18_cifar_digits_random.py',
    dynamic='configs/cls/topo_resnet18_cifar_digits_dynamic.py')

TASKS: Dict[str, Task] = dict(
    digits=Task(
        configs=DIGITS_CONFIGS,
        metric='accuracy/top1',
        data='data/digits',
        dataset='digits',
        input_shape=(3, 32, 32)),
    # the digits split three ways (1079 / 359 / 359): scored on val and on
    # the held-out test split; 14 epochs of the smaller train split are
    # the two-way task's 230 iterations (238), same cosine shape
    digits_3way=Task(
        configs=DIGITS_CONFIGS,
        metric='accuracy/top1',
        data='data/digits_3way',
        dataset='digits_3way',
        input_shape=(3, 32, 32),
        test_split=True,
        options=schedule_options(14)),
    toy_detection=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_r18_fpn_toy.py',
        residual='configs/toy/faster_rcnn_topo_r18_fpn_toy_residual.py',
        dynamic='configs/toy/faster_rcnn_topo_r18_fpn_toy_dynamic.py'),
    # the demo's model (TopoResNet-34 layout at half width, FLOPs budget
    # 0.8, no zero-init residuals) against its residual wiring
    toy_detection_demo=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_r34_fpn_toy_budget.py',
        residual='configs/toy/'
        'faster_rcnn_topo_r34_fpn_toy_budget_residual.py'),
    toy_detection_mobilenetv2=toy_detection_task(
        learnable='configs/toy/faster_rcnn_topo_mobilenetv2_fpn_toy.py',
        residual='configs/toy/'
        'faster_rcnn_topo_mobilenetv2_fpn_toy_residual.py'),
)

# the modern families, each learnable config against its ``_residual``
# twin (the stock backbone) on the same recipe
TASKS.update({
    f'toy_detection_{family}':
    toy_detection_task(
        learnable=f'configs/toy/{config}.py',
        residual=f'configs/toy/{config}_residual.py')
    for family, config in dict(
        rtmdet='rtmdet_topo_toy',
        yolox='yolox_topo_toy',
        swin='faster_rcnn_topo_swin_toy',
        convnext='faster_rcnn_topo_convnext_toy').items()
})


def data_options(task: Task, root: Optional[str] = None) -> List[str]:
    """Options pointing a task's configs at its data folder ``root``
    (default: the task's), and, for a classification set with a test
    split, ``test_dataloader`` at it (the configs alias it to val); then
    the task's own options."""
    root = (root or task.data).rstrip('/')
    if task.detection:
        root += '/'
    opts = [
        f'{s}_dataloader.dataset.data_root={root}'
        for s in ('train', 'val', 'test')
    ]
    if task.detection:
        opts += [
            f'{s}_evaluator.ann_file={root}annotations/{s}.json'
            for s in ('val', 'test')
        ]
    elif task.test_split:
        opts.append('test_dataloader.dataset.data_prefix=test')
    return opts + list(task.options)


def train_and_score(task_name: str,
                    config: str,
                    seed: int,
                    data: str,
                    work_dir: Path,
                    options: Sequence[str] = (),
                    reuse: bool = False) -> dict:
    """Train ``config`` on the task's data (or, with ``reuse``, read the
    run finished in ``work_dir``): its last validation metric, its metric
    on the held-out test split if the task has one, its seconds per
    iteration and its last count of active edges."""
    task = TASKS[task_name]
    opts = [*data_options(task, data), *options]
    run = train_run(config, work_dir, opts, seed=seed, reuse=reuse)
    test = None
    if task.test_split:
        test = test_metrics(
            config, run.checkpoint, Path(work_dir) / 'test', opts,
            reuse=reuse)[task.metric]
    return dict(
        metric=run.last(task.metric),
        test=test,
        s_per_iter=run.seconds_per_iter,
        active=run.last('topo/active_edges'),
        checkpoint=run.checkpoint)
