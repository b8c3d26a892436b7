"""The suite's long trainings (the toy Faster and Mask R-CNN, about 2.5
minutes each alone on 2 cores; the digits classifier, about one),
started when the suite is collected, in the background: one after
another on one thread, so that they keep the second core busy beside the
many short, single-threaded tests instead of running after them (or
three at once, crowding the tests off both cores). A test reads a
finished run through :func:`finished`; a run no selected test needs is
not started."""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
TOY = dict(num_train=200, num_val=50, num_test=50)
EPOCHS = 4


@dataclass(frozen=True)
class Training:
    """A training the suite shares: its config, the data set it reads
    (made once, under the suite's folder) and the options that point the
    config at it."""
    config: str
    data: str  # 'toy_coco' or 'digits'

    def options(self, root: Path) -> List[str]:
        if self.data == 'toy_coco':
            return toy_options(root / 'toy_coco', EPOCHS)
        return [
            f'{s}_dataloader.dataset.data_root={root / "digits"}'
            for s in ('train', 'val', 'test')
        ]


# in the order the suite reaches the tests that read them
TRAININGS = dict(
    trained_digits=Training('configs/cls/topo_resnet18_cifar_digits.py',
                            'digits'),
    trained_faster=Training('configs/toy/faster_rcnn_topo_r18_fpn_toy.py',
                            'toy_coco'),
    trained_mask=Training('configs/toy/mask_rcnn_topo_r18_fpn_toy.py',
                          'toy_coco'),
)

_root = None
_jobs: Dict[str, subprocess.Popen] = {}
_started: Dict[str, float] = {}  # when each job's lane started (epoch s)
_waited: Dict[str, float] = {}  # how long the tests waited for each job
_took: Dict[str, float] = {}  # when each finished, from its lane's start


def make_data(kind: str) -> Path:
    """The suite's copy of the ``kind`` data set, made on first use."""
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix='mmtopo_background_'))
    path = _root / kind
    if not path.exists():
        if kind == 'toy_coco':
            from mmtopo.datasets.toy_coco import make_toy_coco
            make_toy_coco(path, **TOY)
        else:
            from mmtopo.datasets.digits import export_digits
            export_digits(path)
    return path


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


def start(names) -> List[str]:
    """Start the named trainings (fixture names), each once, one after
    another in a background lane of their own; each leaves its exit
    status in ``<name>.rc`` beside its log. Returns those started now."""
    names = [n for n in TRAININGS if n in names and n not in _jobs]
    if not names:
        return []
    commands = []
    for name in names:
        training = TRAININGS[name]
        make_data(training.data)
        train = [
            sys.executable, 'tools/train.py', training.config, '--work-dir',
            str(_root / name), '--cfg-options', *training.options(_root)
        ]
        log, rc = _root / f'{name}.log', _root / f'{name}.rc'
        commands.append(f'{shlex.join(train)} > {shlex.quote(str(log))} '
                        f'2>&1; echo $? > {shlex.quote(str(rc))}')
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    lane = subprocess.Popen(['bash', '-c', '\n'.join(commands)],
                            cwd=REPO,
                            env=env,
                            start_new_session=True)
    for name in names:
        _jobs[name] = lane
        _started[name] = time.time()
    return names


def finished(name: str, timeout: float = 1200) -> Path:
    """The work dir of training ``name`` once it has finished (started now
    if it was not); a failed run fails the test with its log's tail."""
    start([name])
    lane, rc = _jobs[name], _root / f'{name}.rc'
    began = time.monotonic()
    deadline = began + timeout
    while not rc.exists() or not rc.read_text().strip():
        if lane.poll() is not None and not rc.exists():
            raise AssertionError(f'{name}: the background lane ended '
                                 f'({lane.returncode}) before it ran')
        if time.monotonic() > deadline:
            raise AssertionError(f'{name} did not finish in {timeout} s')
        time.sleep(0.5)
    _waited[name] = _waited.get(name, 0.0) + time.monotonic() - began
    log = (_root / f'{name}.log').read_text()
    code = int(rc.read_text())
    assert code == 0, f'{name} failed:\n{log[-3000:]}'
    return _root / name


def _note_finish_times() -> None:
    for name, started in _started.items():
        rc = _root / f'{name}.rc'
        if name not in _took and rc.exists():
            _took[name] = rc.stat().st_mtime - started


def report() -> List[str]:
    """One line per training started: when it finished, counted from the
    start of its lane, and how long the tests waited for it (what the lane
    cost the suite's wall time)."""
    _note_finish_times()
    return [
        f'{name}: ' + (f'finished {_took[name]:.0f} s after its lane '
                       'started' if name in _took else 'not finished') +
        f'; the tests waited {_waited.get(name, 0.0):.0f} s for it'
        for name in _started
    ]


def stop_all() -> None:
    """End every training still running and remove their files (what
    :func:`report` says is kept)."""
    _note_finish_times()
    for lane in set(_jobs.values()):
        if lane.poll() is None:
            os.killpg(lane.pid, signal.SIGKILL)
            lane.wait()
    _jobs.clear()
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)
