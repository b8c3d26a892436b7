"""The run layer: what ``reuse`` takes for a finished run, and what a run
reports of its training."""
import json

from mmtopo.experiments.runs import FINISHED, Run, train_run


def _fake_train_py(tmp_path, exit_code=0):
    """A train.py stand-in that counts its calls and exits with
    ``exit_code``."""
    script = tmp_path / 'train.py'
    calls = tmp_path / 'calls'
    script.write_text(
        'import pathlib, sys\n'
        f'p = pathlib.Path({str(calls)!r})\n'
        'p.write_text(str(int(p.read_text() if p.exists() else 0) + 1))\n'
        f'sys.exit({exit_code})\n')
    return script, calls


def test_reuse_retrains_a_run_that_was_interrupted(tmp_path):
    script, calls = _fake_train_py(tmp_path)
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    # an interrupted run: checkpoints, but no marker
    (work_dir / 'last_checkpoint').write_text('epoch_2.pth')
    train_run('cfg.py', work_dir, train_py=script, reuse=True)
    assert calls.read_text() == '1'
    assert (work_dir / FINISHED).exists()
    # now finished: reused, not trained again
    train_run('cfg.py', work_dir, train_py=script, reuse=True)
    assert calls.read_text() == '1'


def test_a_failed_run_is_not_marked_finished(tmp_path):
    script, calls = _fake_train_py(tmp_path, exit_code=3)
    work_dir = tmp_path / 'run'
    run = train_run('cfg.py', work_dir, train_py=script, check=False)
    assert run.returncode == 3
    assert not (work_dir / FINISHED).exists()


def test_training_time_and_iterations_come_from_the_logged_rows(tmp_path):
    rows = [
        dict(step=1, loss=1.0, time=9.0),  # the first (warm-up) is left out
        dict(step=10, loss=0.5, time=2.0),
        dict(step=20, loss=0.4, time=4.0),
        dict(step=20, accuracy=0.7),
    ]
    run = Run(tmp_path, 0, rows)
    assert run.iterations == 20
    assert run.seconds_per_iter == 3.0
    assert run.train_seconds == 60.0
    assert run.last('accuracy') == 0.7
    assert json.dumps(run.values('loss')) == '[1.0, 0.5, 0.4]'
