"""tools/analysis_tools/get_flops.py: dense, trained and pruned networks
side by side, counted as they compute."""
import re

import torch

from mmtopo.utils.complexity import BackboneCosts, count_flops
from tests.helpers import REPO, load_tool
from tests.test_tools.test_prune_topology import DIGITS, trained_like


def tool():
    return load_tool('tools/analysis_tools/get_flops.py')


def table(text):
    """{network: [backbone params, backbone FLOPs, params, FLOPs]} in the
    printed units (M, G)."""
    rows = {}
    for line in text.splitlines():
        cells = re.findall(r'([\d.]+)[MG] \(([\d.]+)x\)', line)
        if cells:
            rows[line.split()[0]] = [float(v) for v, _ in cells]
    return rows


def test_digits_checkpoint_dense_trained_and_pruned(tmp_path, capsys):
    model = trained_like(tmp_path / 'trained.pth')  # layer2's block 1 dies
    assert tool().main([
        str(DIGITS), '--checkpoint',
        str(tmp_path / 'trained.pth'), '--shape', '32', '--threshold', '1e-3'
    ]) == 0
    rows = table(capsys.readouterr().out)
    assert list(rows) == ['dense', 'trained', 'pruned']
    x = torch.zeros(1, 3, 32, 32)
    costs = BackboneCosts(model.backbone, (3, 32, 32))
    assert rows['dense'][1] == round(costs.total / 1e9, 6)
    # as it runs, the trained model skips what the 1e-3 pruning drops
    # but for the 1e-4 edge
    assert rows['trained'][1] == round(
        count_flops(model.backbone, (x, )) / 1e9, 6)
    with torch.no_grad():
        model.backbone.layer3.edge_weights[0, 2] = 0.
    assert rows['pruned'][1] == round(
        costs.flops(model.backbone.topology_graphs()) / 1e9, 6)
    assert rows['pruned'][1] < rows['trained'][1] < rows['dense'][1]
    # the removed block's weights go, and the edges become fixed buffers
    block = sum(p.numel() for p in model.backbone.layer2[1].parameters())
    edges = sum(s.edge_weights.numel() for s in model.backbone.stage_graphs)
    assert round(rows['pruned'][0] *
                 1e6) == round(rows['trained'][0] * 1e6) - block - edges
    assert rows['pruned'][3] < rows['trained'][3]  # the whole classifier


def test_detector_counts_heads_and_backbone(tmp_path, capsys):
    config = REPO / 'configs/toy/faster_rcnn_topo_r18_fpn_toy.py'
    assert tool().main([str(config), '--shape', '128', '96']) == 0
    out = capsys.readouterr().out
    rows = table(out)
    assert 'Input shape: (3, 128, 96)' in out
    # learnable init='residual': only the chain computes; heads cost more
    # than nothing and the same in every row
    assert rows['trained'][1] < rows['dense'][1]
    heads = [r[3] - r[1] for r in rows.values()]
    assert heads[0] > 0 and max(heads) - min(heads) < 2e-6
