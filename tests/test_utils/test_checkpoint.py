"""mmengine checkpoints load under torch's default weights_only loading,
and nothing else does."""
import os
import pickle

import pytest
import torch

from tests.toy import toy_runner


@pytest.fixture(autouse=True)
def no_unsafe_override(monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


def test_resume_and_load_from_with_default_loading(tmp_path):
    runner = toy_runner(tmp_path, max_iters=2, checkpoint_interval=2)
    runner.train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.exists()
    state = torch.load(ckpt)  # weights_only=True is torch's default
    assert state['meta']['iter'] == 2
    assert 'message_hub' in state and 'optimizer' in state

    resumed = toy_runner(tmp_path, max_iters=4, checkpoint_interval=2,
                         resume=True)
    resumed.train()
    assert resumed.iter == 4

    loaded = toy_runner(tmp_path / 'ft', max_iters=1, load_from=str(ckpt))
    loaded.train()
    assert loaded.iter == 1
    edge = loaded.model.backbone.layer1.edge_weights
    assert edge.shape == runner.model.backbone.layer1.edge_weights.shape


class Payload:
    """What an attacker would pickle: runs code when unpickled."""

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_foreign_object_is_still_refused(tmp_path):
    import mmtopo  # noqa: F401  (allow-lists the mmengine types)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=dict(extra=Payload())), path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load '
                       'failed'):
        torch.load(path)
    from mmengine.runner import CheckpointLoader
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path))


class GetattrPayload:
    """Reaches a method of an allowed type through getattr."""

    def __reduce__(self):
        import numpy as np
        return (getattr, (np.ndarray, 'tofile'))


def test_getattr_only_reaches_history_buffer_statistics(tmp_path):
    import mmtopo  # noqa: F401
    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=dict(extra=GetattrPayload())), path)
    with pytest.raises(pickle.UnpicklingError, match='tofile'):
        torch.load(path)
