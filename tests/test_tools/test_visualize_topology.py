"""tools/analysis_tools/visualize_topology.py draws a checkpoint's graph."""

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from tests.helpers import REPO, load_tool

DIGITS = REPO / 'configs/cls/topo_resnet18_cifar_digits.py'


def tool():
    return load_tool('tools/analysis_tools/visualize_topology.py')


def checkpoint_of(config, path, **backbone):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(config))
    for key, value in backbone.items():
        cfg.model.backbone[key] = value
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    if model.backbone.layer2.learnable:
        with torch.no_grad():
            model.backbone.layer2.edge_weights[0, 2] = 0.0
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_draws_a_checkpoint(tmp_path):
    ckpt = checkpoint_of(DIGITS, tmp_path / 'digits.pth')
    out = tmp_path / 'topology.png'
    assert tool().main([str(DIGITS), str(ckpt), '--out', str(out)]) == 0
    with Image.open(out) as image:
        assert image.size[0] > 500


def test_a_checkpoint_of_another_graph_is_refused(tmp_path):
    ckpt = checkpoint_of(DIGITS, tmp_path / 'other.pth',
                         topology=dict(type='residual'))
    with pytest.raises(ValueError, match='checkpoint graph does not fit'):
        tool().main([str(DIGITS), str(ckpt), '--out',
                     str(tmp_path / 'x.png')])
