"""What a finished run's last checkpoint says about its edges."""
from pathlib import Path
from statistics import mean
from typing import List, Optional, Tuple

import torch


def last_state(work_dir: Path) -> Optional[dict]:
    """The model state dict of the run's last ``epoch_N.pth`` (by N), or
    None if the run saved none."""
    from .. import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()
    ckpts = sorted(
        Path(work_dir).glob('epoch_*.pth'),
        key=lambda path: int(path.stem.split('_')[1]))
    if not ckpts:
        return None
    return torch.load(ckpts[-1], map_location='cpu')['state_dict']


def edge_range(work_dir: Path) -> Optional[Tuple[float, float, float]]:
    """(min, max, active ratio) of the edges in the last checkpoint (the
    entries of every stage's mask), or None without a checkpoint."""
    state = last_state(work_dir)
    if state is None:
        return None
    values = torch.cat([
        w[state[k.replace('edge_weights', 'edge_mask')].bool()]
        for k, w in state.items() if k.endswith('edge_weights')
    ])
    return (float(values.min()), float(values.max()),
            float((values != 0).float().mean()))


def edge_summary(ranges: List[Optional[tuple]], digits: int = 3) -> str:
    """``[min, max], active <ratio>`` over the runs' :func:`edge_range`, or
    ``-`` when no run has any."""
    ranges = [r for r in ranges if r]
    if not ranges:
        return '-'
    return (f'[{min(r[0] for r in ranges):.{digits}f}, '
            f'{max(r[1] for r in ranges):.{digits}f}], active '
            f'{mean(r[2] for r in ranges):.2f}')
