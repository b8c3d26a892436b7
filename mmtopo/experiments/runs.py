"""Training and testing runs through a ``tools/train.py`` in a subprocess,
and what they logged."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
# written into a work dir when its training has run to the end
FINISHED = 'FINISHED'


def library_train_py(package: str) -> Path:
    """An installed library's own tools/train.py (mmdet and mmpretrain
    ship theirs under ``.mim``); its test.py lies beside it."""
    import importlib
    module = importlib.import_module(package)
    return Path(module.__file__).parent / '.mim' / 'tools' / 'train.py'


def read_scalars(work_dir: Path) -> List[dict]:
    """The rows of the run's last ``vis_data/scalars.json`` (mmengine's
    local visualizer backend), or none when it logged nothing."""
    logs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not logs:
        return []
    return [
        json.loads(line) for line in logs[-1].read_text().splitlines()
        if line.strip()
    ]


def last_checkpoint(work_dir: Path) -> str:
    """The checkpoint mmengine's ``last_checkpoint`` file names."""
    return (Path(work_dir) / 'last_checkpoint').read_text().strip()


@dataclass
class Run:
    """A finished training run: its work dir and its logged rows."""
    work_dir: Path
    returncode: int
    rows: List[dict] = field(default_factory=list)

    def last(self, key: str) -> Optional[float]:
        """The last value logged under ``key`` (a validation metric, a
        ``topo/*`` scalar), or None."""
        values = [r[key] for r in self.rows if key in r]
        return values[-1] if values else None

    def values(self, key: str) -> List[float]:
        return [r[key] for r in self.rows if key in r]

    @property
    def seconds_per_iter(self) -> Optional[float]:
        """Mean time of a training iteration (over the logged ones, the
        first left out)."""
        times = [r['time'] for r in self.rows if 'loss' in r][1:]
        return mean(times) if times else None

    @property
    def iterations(self) -> int:
        """Training iterations run (the last one logged; the logger logs
        every few, and at the end of every epoch)."""
        steps = [r['step'] for r in self.rows if 'loss' in r]
        return max(steps) if steps else 0

    @property
    def train_seconds(self) -> float:
        """Training time: iterations times their mean logged time."""
        return (self.seconds_per_iter or 0.0) * self.iterations

    @property
    def checkpoint(self) -> str:
        return last_checkpoint(self.work_dir)


def _run(script: Path, args: Sequence[str], log: Path) -> int:
    proc = subprocess.run([sys.executable, str(script), *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    return proc.returncode


def train_run(config: str,
              work_dir: Path,
              options: Sequence[str] = (),
              seed: Optional[int] = None,
              train_py: Optional[Path] = None,
              reuse: bool = False,
              check: bool = True) -> Run:
    """Train ``config`` into ``work_dir`` through ``train_py`` (default:
    this project's tools/train.py; a library's own works too), with
    ``key=value`` options and the seed. With ``reuse``, a run that
    finished there (its ``FINISHED`` marker written; an interrupted run
    leaves checkpoints but no marker, and is trained again) is read
    instead. ``check``: a failed run is an error naming its log (else it
    is returned with its return code)."""
    work_dir = Path(work_dir)
    finished = work_dir / FINISHED
    if reuse and finished.exists():
        return Run(work_dir, 0, read_scalars(work_dir))
    options = list(options)
    if seed is not None:
        options.insert(0, f'randomness.seed={seed}')
    args = [str(config), '--work-dir', str(work_dir)]
    if options:
        args += ['--cfg-options', *options]
    log = work_dir / 'train_output.log'
    code = _run(train_py or REPO / 'tools' / 'train.py', args, log)
    if check and code != 0:
        raise RuntimeError(f'training {config} failed (exit {code}); see '
                           f'{log}')
    if code == 0:
        finished.write_text(f'{config}\n')
    return Run(work_dir, code, read_scalars(work_dir))


def test_metrics(config: str,
                 checkpoint: str,
                 work_dir: Path,
                 options: Sequence[str] = (),
                 test_py: Optional[Path] = None,
                 reuse: bool = False) -> Dict[str, float]:
    """The metrics of ``checkpoint`` on the config's test split, through
    ``test_py`` (default: this project's tools/test.py), as the run logged
    them; with ``reuse``, an earlier evaluation in ``work_dir`` is read."""
    work_dir = Path(work_dir)
    if not (reuse and list(work_dir.glob('*/*.json'))):
        args = [str(config), str(checkpoint), '--work-dir', str(work_dir)]
        if options:
            args += ['--cfg-options', *options]
        log = work_dir / 'test_output.log'
        code = _run(test_py or REPO / 'tools' / 'test.py', args, log)
        if code != 0:
            raise RuntimeError(f'testing {checkpoint} failed (exit {code}); '
                               f'see {log}')
    logs = sorted(work_dir.glob('*/*.json'))
    return json.loads(logs[-1].read_text().splitlines()[-1])
