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
    ckpt = checkpoint_of(
        DIGITS, tmp_path / 'other.pth', topology=dict(type='residual'))
    with pytest.raises(ValueError, match='checkpoint graph does not fit'):
        tool().main([str(DIGITS), str(ckpt), '--out', str(tmp_path / 'x.png')])


DIGITS_DYNAMIC = REPO / 'configs/cls/topo_resnet18_cifar_digits_dynamic.py'


def test_gates_over_a_data_set(tmp_path, capsys):
    """--gates runs the checkpoint over the val images and reports, per
    edge into a routed node, the mean and spread of its gate: gates that
    vary per image have a spread, and a pruned edge is reported as such."""
    from mmtopo.datasets import ensure_dataset
    data = tmp_path / 'digits'
    ensure_dataset('digits', str(data))
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(DIGITS_DYNAMIC))
    cfg.model.backbone.topology.init = 'uniform'  # every edge non-zero
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for stage in model.backbone.stage_graphs:
            for router in stage.routers.values():
                # an untrained net in eval mode has pooled features of
                # 10-20: keep the gates off their saturation
                router.reduce.weight.mul_(0.05)
                router.gate.weight.normal_(0, 0.3)
        model.backbone.layer2.edge_weights[0, 2] = 0.0
    ckpt = tmp_path / 'dynamic.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'gates.png'
    assert tool().main([
        str(DIGITS_DYNAMIC),
        str(ckpt), '--gates', '--max-images', '20', '--out',
        str(out), '--cfg-options', f'val_dataloader.dataset.data_root={data}',
        'val_dataloader.batch_size=8', 'model.backbone.topology.init=uniform'
    ]) == 0
    lines = capsys.readouterr().out.splitlines()
    edges = [line for line in lines if '->' in line]
    # ResNet-18: each stage's node 2 (the output) has a router over 0 and 1
    assert [line.split(':')[0] for line in edges
            ] == [f'layer{k} {i}->2' for k in range(1, 5) for i in (0, 1)]
    spreads = [
        float(line.split('± ')[1].split(',')[0]) for line in edges
        if 'layer2 0->2' not in line
    ]
    assert min(spreads) > 0  # per-image gates, not one static value
    assert 'weight 0.000' in [e for e in edges if 'layer2 0->2' in e][0]
    with Image.open(out) as image:
        assert image.size[0] > 500
    # three batches of 8 reach --max-images 20
    assert f'Gates over 24 instances drawn to {out}' in lines


def test_gates_of_a_static_backbone_are_refused(tmp_path):
    ckpt = checkpoint_of(DIGITS, tmp_path / 'digits.pth')
    with pytest.raises(ValueError, match='no routers'):
        tool().main([
            str(DIGITS),
            str(ckpt), '--gates', '--out',
            str(tmp_path / 'x.png')
        ])
