"""Load mmengine checkpoints under torch's default ``weights_only=True``.

torch >= 2.6 refuses any pickled object it does not know; mmengine 0.10.7
checkpoints hold a few (the message hub's history buffers, numpy arrays and
scalars in it, ...). Setting ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` would make
them load but lets any checkpoint run code; allow-listing exactly these types
keeps every other object refused.
"""
import os.path as osp
import pickle
import zipfile
from typing import List

import numpy as np
import torch


def _numpy_globals() -> List:
    """numpy's array/scalar reconstruction and dtype classes, under the
    module path the installed numpy pickles them with."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    dtype_classes = [
        type(np.dtype(t))
        for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                  np.float16, np.float32, np.float64)
    ]
    return [
        multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
        *dtype_classes
    ]


HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to what mmengine pickles with it: the
    statistics functions of ``HistoryBuffer`` (``HistoryBuffer.mean``, ...).

    Allow-listing the real ``builtins.getattr`` would let a checkpoint reach
    any attribute of any allowed type (``ndarray.tofile``, ...).
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _mmengine_globals() -> List:
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')]


def mmengine_checkpoint_globals() -> List:
    """Every non-tensor type an mmengine checkpoint of this stack pickles."""
    return [*_numpy_globals(), *_mmengine_globals()]


MMENGINE_CHECKPOINT_GLOBALS = mmengine_checkpoint_globals()


def allow_mmengine_checkpoints() -> None:
    """Allow-list :data:`MMENGINE_CHECKPOINT_GLOBALS` for ``torch.load``."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)


def _readable_checkpoint(filename: str, map_location):
    """mmengine's loader of local checkpoint files, with a file that is not
    a readable checkpoint named in the error: truncated or not a torch
    archive, or holding objects the safe loader refuses. The refusal does
    not pass on torch's advice to load with ``weights_only=False``, which
    would let an untrusted file run code."""
    from mmengine.runner.checkpoint import load_from_local
    try:
        return load_from_local(filename, map_location)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(osp.expanduser(filename)):  # a torch archive
            raise ValueError(
                f'{filename} is not a checkpoint mmtopo loads: it holds '
                'objects that are not weights or the types mmengine saves '
                "(refused by torch's weights_only loading)") from None
        raise ValueError(
            f'{filename} is not a readable checkpoint (truncated, or not a '
            'file torch.save wrote)') from None
    except (RuntimeError, EOFError, ValueError) as err:
        if isinstance(err, RuntimeError) and not _unreadable(err):
            raise
        raise ValueError(
            f'{filename} is not a readable checkpoint (truncated, or not a '
            'file torch.save wrote)') from None


def _unreadable(err: RuntimeError) -> bool:
    text = str(err)
    return any(
        s in text for s in ('PytorchStreamReader', 'zip archive',
                            'Invalid magic number', 'file not found'))


def name_unreadable_checkpoints() -> None:
    """Load local checkpoint files (mmengine's ``load_from_local``: the
    runner's ``load_from`` and ``resume``, ``init_cfg`` ``Pretrained``,
    ``load_checkpoint``) through :func:`_readable_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=_readable_checkpoint, force=True)
