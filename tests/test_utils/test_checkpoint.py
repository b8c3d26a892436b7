"""mmengine checkpoints load under torch's default weights_only loading,
and nothing else does."""
import os
import pickle

import pytest
import torch
from mmengine.hooks import Hook

from tests.toy import toy_runner

# torch < 2.6 loads with weights_only=False by default: nothing is refused
REFUSES_BY_DEFAULT = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 6),
    reason="torch < 2.6 loads any pickle by default (weights_only=False)")


@pytest.fixture(autouse=True)
def no_unsafe_override(monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


class StartRecorder(Hook):
    """Keeps the iteration and the model's state at ``before_train``, after
    mmengine's resume or ``load_from`` and before any step."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.state = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }


def test_resume_and_load_from_with_default_loading(tmp_path):
    runner = toy_runner(tmp_path, max_iters=2, checkpoint_interval=2)
    runner.train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.exists()
    state = torch.load(ckpt)  # weights_only=True is torch's default
    assert state['meta']['iter'] == 2
    assert 'message_hub' in state and 'optimizer' in state

    for resume, load_from, work in ((True, None, tmp_path), (False, str(ckpt),
                                                             tmp_path / 'ft')):
        recorder = StartRecorder()
        loaded = toy_runner(
            work,
            max_iters=4,
            checkpoint_interval=2,
            resume=resume,
            load_from=load_from,
            hooks=[recorder],
            seed=1)
        loaded.train()
        # resuming continues the schedule, load_from starts a new one
        assert recorder.iter == (2 if resume else 0)
        assert sorted(recorder.state) == sorted(state['state_dict'])
        for key, value in state['state_dict'].items():
            assert torch.equal(recorder.state[key], value), key


class Payload:
    """What an attacker would pickle: runs code when unpickled."""

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


@REFUSES_BY_DEFAULT
def test_foreign_object_is_still_refused(tmp_path):
    import mmtopo  # noqa: F401  (allow-lists the mmengine types)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=dict(extra=Payload())), path)
    with pytest.raises(
            pickle.UnpicklingError, match='Weights only load '
            'failed'):
        torch.load(path)
    # through mmengine's loaders: refused, the file named, and without
    # torch's advice to load it unsafely
    from mmengine.runner import CheckpointLoader
    with pytest.raises(ValueError) as info:
        CheckpointLoader.load_checkpoint(str(path))
    assert str(info.value) == (
        f'{path} is not a checkpoint mmtopo loads: it holds objects that '
        'are not weights or the types mmengine saves (refused by torch\'s '
        'weights_only loading)')


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_an_unreadable_checkpoint_file_is_named(tmp_path, damage):
    """Through mmengine's loaders (load_from, resume, Pretrained,
    load_checkpoint) and the tools: the file is named, torch's stream
    errors and its weights_only=False advice do not reach the user."""
    from mmengine.runner import load_checkpoint

    import mmtopo  # noqa: F401
    model = torch.nn.Linear(2, 2)
    path = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) //
                          2] if damage == 'truncated' else bytes(range(256)) *
                     4)
    with pytest.raises(ValueError) as info:
        load_checkpoint(model, str(path))
    assert str(info.value) == (
        f'{path} is not a readable checkpoint (truncated, or not a file '
        'torch.save wrote)')
    assert 'weights_only' not in str(info.value)


class GetattrPayload:
    """Reaches a method of an allowed type through getattr."""

    def __reduce__(self):
        import numpy as np
        return (getattr, (np.ndarray, 'tofile'))


@REFUSES_BY_DEFAULT
def test_getattr_only_reaches_history_buffer_statistics(tmp_path):
    import mmtopo  # noqa: F401
    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=dict(extra=GetattrPayload())), path)
    with pytest.raises(pickle.UnpicklingError, match='tofile'):
        torch.load(path)
