"""Classification with mmpretrain: configs build, the digits classifier
trains through tools/train.py, a stock mmpretrain config takes a
TopoResNet through custom_imports."""
import json
import os
import re
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.helpers import (REPO, check_edge_regularisation, repo_configs,
                           run_tool)

CONFIGS = repo_configs('mmpretrain')
DIGITS = REPO / 'configs/cls/topo_resnet18_cifar_digits.py'


def build_classifier(cfg):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_every_classification_config_builds(config):
    cfg = Config.fromfile(str(config))
    model = build_classifier(cfg)
    # a topology backbone, or mmpretrain's own in a reference or recipe
    assert type(model.backbone).__name__ in ('TopoResNet', 'TopoResNetCIFAR',
                                             'TopoRegNet', 'TopoMobileNetV2',
                                             'TopoConvNeXt', 'ResNet_CIFAR')
    check_edge_regularisation(cfg, model)
    size = 32 if 'cifar' in config.name else 64
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(2, 3, size, size))
    assert len(feats) == 1  # out_indices=(3, ): the single map the neck takes
    assert feats[0].shape == (2, model.head.in_channels)


@pytest.fixture
def trained_digits():
    """The digits classifier trained by tools/train.py (10 epochs), in the
    background from the start of the suite (tests/background.py)."""
    from tests import background
    return background.finished('trained_digits')


def test_digits_classifier_trains(trained_digits, tmp_path):
    """Measured: top-1 99.7% on the 359 validation digits after 10 epochs."""
    from tests import background
    root = background.make_data('digits')
    work = trained_digits
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHON=sys.executable)
    data = background.TRAININGS['trained_digits'].options(root.parent)
    log = sorted(work.glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    top1 = [r['accuracy/top1'] for r in rows if 'accuracy/top1' in r][-1]
    assert top1 > 95.0

    # inference through mmpretrain's own API, as the README shows
    from mmpretrain import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        str(DIGITS), pretrained=str(work / 'epoch_10.pth'), device='cpu')
    images = sorted((root / 'val').glob('*/*.png'))[::40]
    preds = inferencer([str(p) for p in images])
    correct = [
        p['pred_label'] == int(img.parent.name)
        for p, img in zip(preds, images)
    ]
    assert sum(correct) >= len(images) - 1

    # the same tools evaluate it, and train it on 2 CPU processes
    proc = run_tool([
        sys.executable, 'tools/test.py',
        str(DIGITS),
        str(work / 'epoch_10.pth'), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *data
    ],
                    check=True,
                    env=env)
    tested = float(
        re.findall(r'accuracy/top1: ([0-9.]+)', proc.stdout + proc.stderr)[-1])
    assert tested == pytest.approx(top1, abs=1e-3)
    run_tool([
        'bash', 'tools/dist_train.sh',
        str(DIGITS), '2', '--work-dir',
        str(tmp_path / 'dist'), '--cfg-options', *data,
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'train_dataloader.dataset.indices=256'
    ],
             check=True,
             env=env)
    assert (tmp_path / 'dist' / 'epoch_1.pth').exists()


def test_stock_mmpretrain_cifar_config_with_custom_imports(tmp_path):
    cfg_file = tmp_path / 'cifar_topo.py'
    cfg_file.write_text(
        "_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'\n"
        "custom_imports = dict(imports=['mmtopo'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='TopoResNetCIFAR', "
        "depth=18, out_indices=(3, ), "
        "topology=dict(type='learnable')))\n")
    cfg = Config.fromfile(str(cfg_file))
    model = build_classifier(cfg)
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(
        inputs=[
            torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)
            for _ in range(4)
        ],
        data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    before = model.backbone.layer2.edge_weights.detach().clone()
    losses = model.train_step(data, optim)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(before, model.backbone.layer2.edge_weights)
