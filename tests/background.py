"""The suite's two long trainings (the toy Faster and Mask R-CNN, about 2.5
minutes each alone on 2 cores), started when the suite is collected, in the
background, one thread each, so that they run beside the many short,
single-threaded tests instead of after them. A test reads a finished run
through :func:`finished`; a run no selected test needs is not started."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
TOY = dict(num_train=200, num_val=50, num_test=50)
CONFIGS = dict(
    trained_faster='configs/toy/faster_rcnn_topo_r18_fpn_toy.py',
    trained_mask='configs/toy/mask_rcnn_topo_r18_fpn_toy.py')
EPOCHS = 4

_root = None
_jobs: Dict[str, subprocess.Popen] = {}


def toy_options(root, epochs=None, test_split: str = 'val') -> List[str]:
    """Point a toy config at the toy set under ``root``. The test loop
    scores ``test_split``: ``'val'`` (the default here) so that
    tools/test.py reproduces the training run's validation exactly;
    ``'test'`` is the configs' own choice, the held-out split. With
    ``epochs``, train that long without the lr step."""
    root = f'{root}/'
    opts = [
        f'{s}_dataloader.dataset.data_root={root}'
        for s in ('train', 'val', 'test')
    ]
    opts += [
        f'test_dataloader.dataset.ann_file=annotations/{test_split}.json',
        f'test_dataloader.dataset.data_prefix.img={test_split}/'
    ]
    opts += [
        f'val_evaluator.ann_file={root}annotations/val.json',
        f'test_evaluator.ann_file={root}annotations/{test_split}.json'
    ]
    if epochs:
        opts += [
            f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            'param_scheduler.1.milestones=[100]'
        ]
    return opts


def start(names) -> None:
    """Start the named trainings (fixture names), each once."""
    global _root
    names = [n for n in names if n in CONFIGS and n not in _jobs]
    if not names:
        return
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix='mmtopo_background_'))
        from mmtopo.datasets.toy_coco import make_toy_coco
        make_toy_coco(_root / 'toy_coco', **TOY)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    for name in names:
        work = _root / name
        log = open(_root / f'{name}.log', 'w')
        _jobs[name] = subprocess.Popen([
            sys.executable, 'tools/train.py', CONFIGS[name], '--work-dir',
            str(work), '--cfg-options',
            *toy_options(_root / 'toy_coco', EPOCHS)
        ],
                                       cwd=REPO,
                                       env=env,
                                       stdout=log,
                                       stderr=subprocess.STDOUT)


def finished(name: str, timeout: float = 1200) -> Path:
    """The work dir of training ``name`` once it has finished (started now
    if it was not); a failed run fails the test with its log's tail."""
    start([name])
    proc = _jobs[name]
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f'{name} did not finish in {timeout} s')
    log = (_root / f'{name}.log').read_text()
    assert code == 0, f'{name} failed:\n{log[-3000:]}'
    return _root / name


def stop_all() -> None:
    """End every training still running and remove their files."""
    for proc in _jobs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _jobs.clear()
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)
