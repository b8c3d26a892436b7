"""``compile=True`` in an mmengine config: the toy detector and the digits
classifier train through tools/train.py with ``torch.compile``.

Slow (inductor compiles the backbone, forward and backward, on the CPU):
``make test-slow`` runs them; ``make test`` leaves them out.
"""
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from mmtopo.datasets.digits import export_digits
from mmtopo.datasets.toy_coco import make_toy_coco
from tests.helpers import REPO, run_tool

pytestmark = pytest.mark.slow

TOY_FASTER = REPO / 'configs/toy/faster_rcnn_topo_r18_fpn_toy.py'
DIGITS = REPO / 'configs/cls/topo_resnet18_cifar_digits.py'
ENV = dict(
    os.environ,
    PYTHONPATH=str(REPO),
    PYTHON=sys.executable,
    OMP_NUM_THREADS='2')


def train(config, work, options, compile):
    opts = [*options, 'default_hooks.logger.interval=1', 'randomness.seed=0']
    if compile:
        opts.append('compile=True')
    proc = run_tool([
        sys.executable, 'tools/train.py',
        str(config), '--work-dir',
        str(work), '--cfg-options', *opts
    ],
                    timeout=1500,
                    check=True,
                    env=ENV)
    log = proc.stdout + proc.stderr
    assert ('Model has been "compiled"' in log) == compile
    scalars = sorted(Path(work).glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [r for r in rows if 'loss' in r]


def check_compiled_run(eager, compiled, work):
    """The first iteration (same weights, same batch) computes the same
    loss to 1e-3 (float32 in another summation order; later iterations
    drift apart through sampling); every loss is finite; the edges learn."""
    assert compiled[0]['loss'] == pytest.approx(eager[0]['loss'], rel=1e-3)
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in compiled)
    assert len(compiled) == len(eager)
    ckpt = torch.load(
        sorted(Path(work).glob('*.pth'))[-1],
        map_location='cpu',
        weights_only=False)
    edges = ckpt['state_dict'][next(k for k in ckpt['state_dict']
                                    if k.endswith('layer1.edge_weights'))]
    mask = ckpt['state_dict'][next(k for k in ckpt['state_dict']
                                   if k.endswith('layer1.edge_mask'))]
    initial = torch.diag(torch.ones(mask.shape[0] - 1), 1)  # residual init
    assert not torch.equal(edges[mask], initial[mask])


def test_toy_faster_rcnn_trains_with_compile_true(tmp_path):
    root = make_toy_coco(
        tmp_path / 'toy_coco', num_train=24, num_val=4, num_test=4)
    options = [
        f'{s}_dataloader.dataset.data_root={root}/'
        for s in ('train', 'val', 'test')
    ]
    options += [
        f'{s}_evaluator.ann_file={root}/annotations/{s}.json'
        for s in ('val', 'test')
    ]
    options += [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'param_scheduler.1.milestones=[100]'
    ]
    eager = train(TOY_FASTER, tmp_path / 'eager', options, compile=False)
    compiled = train(TOY_FASTER, tmp_path / 'compiled', options, compile=True)
    check_compiled_run(eager, compiled, tmp_path / 'compiled')


def test_digits_classifier_trains_with_compile_true(tmp_path):
    root = export_digits(tmp_path / 'digits')
    options = [
        f'{s}_dataloader.dataset.data_root={root}'
        for s in ('train', 'val', 'test')
    ]
    options += [
        'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=256'
    ]
    eager = train(DIGITS, tmp_path / 'eager', options, compile=False)
    compiled = train(DIGITS, tmp_path / 'compiled', options, compile=True)
    check_compiled_run(eager, compiled, tmp_path / 'compiled')
