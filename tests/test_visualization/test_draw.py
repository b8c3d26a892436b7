"""The topology picture: one panel per stage, edges styled by weight,
pruned edges and dead blocks visible."""
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

from mmtopo.models import TopoResNet
from mmtopo.visualization import draw_topology, figure_to_rgb
from mmtopo.visualization.draw import PRUNED, REMOVED_NODE


def _patches(ax):
    return {p.get_gid(): p for p in ax.patches}


def _nodes(ax):
    return {c.get_gid(): c for c in ax.collections}


def test_one_panel_per_stage_with_every_edge_styled_by_its_weight():
    model = TopoResNet(
        depth=34, topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        model.layer2.edge_weights[0, 1] = -0.8  # negative: another colour
        model.layer2.edge_weights[0, 2] = 0.0  # pruned
        model.layer2.edge_weights[1, 2] = 0.0  # with 0->2: node 2 removed
    fig = draw_topology(model.topology_graphs(), title='t')
    panels = fig.axes[:4]
    assert len(fig.axes) == 5  # four stages and the colour bar
    for ax, stage in zip(panels, model.stage_graphs):
        patches = _patches(ax)
        assert sorted(patches) == sorted(f'edge {i}->{j}'
                                         for i, j, _ in stage.edges())
        assert len(_nodes(ax)) == len(stage) + 1
    layer2 = _patches(panels[1])
    pruned, negative, positive = (layer2['edge 0->2'], layer2['edge 0->1'],
                                  layer2['edge 0->4'])
    assert pruned.get_linestyle() == ':'
    assert pruned.get_edgecolor() == to_rgba(PRUNED)
    assert layer2['edge 2->3'].get_linestyle() == ':'  # from a removed node
    assert positive.get_linestyle() == 'solid'
    assert negative.get_edgecolor() != positive.get_edgecolor()
    # width grows with |w|: 0.8 against 0.25 (1 / in-degree of the output)
    assert negative.get_linewidth() > positive.get_linewidth()
    nodes = _nodes(panels[1])
    assert np.allclose(nodes['node 2'].get_facecolor()[0],
                       to_rgba(REMOVED_NODE))
    assert not np.allclose(nodes['node 1'].get_facecolor()[0],
                           to_rgba(REMOVED_NODE))
    assert panels[1].get_title(loc='left') == (
        'layer2: 4 blocks, 8/10 edges active, 1 dead (learnable)')


def test_a_block_that_reaches_nothing_is_dead_too():
    """layer3's block 5 feeds only the output, by a zero edge: it is dead
    (pruning removes it, eval skips it), drawn grey with its in-edges."""
    model = TopoResNet(
        depth=34, topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        model.layer3.edge_weights[5, 6] = 0.0
    fig = draw_topology(model.topology_graphs())
    layer3 = fig.axes[2]
    nodes, patches = _nodes(layer3), _patches(layer3)
    assert np.allclose(nodes['node 5'].get_facecolor()[0],
                       to_rgba(REMOVED_NODE))
    assert patches['edge 4->5'].get_linestyle() == ':'
    assert patches['edge 4->6'].get_linestyle() == 'solid'
    assert layer3.get_title(loc='left') == (
        'layer3: 6 blocks, 20/21 edges active, 1 dead (learnable)')


def test_figure_to_rgb_is_an_image():
    fig = draw_topology(TopoResNet(depth=18).topology_graphs())
    image = figure_to_rgb(fig)
    width, height = fig.get_size_inches() * fig.dpi
    assert image.shape == (round(height), round(width), 3)
    assert image.dtype == np.uint8
    assert image.min() < 100 and image.max() == 255  # ink on white


@pytest.mark.parametrize('depth', [18, 101])
def test_readable_sizes(depth):
    fig = draw_topology(
        TopoResNet(depth=depth,
                   topology=dict(type='learnable')).topology_graphs())
    width, height = fig.get_size_inches()
    assert 6 <= width <= 14 and height <= 16


def test_other_families_draw_one_panel_per_stage_titled_by_its_name():
    """TopoMobileNetV2: seven stages, the one-block ones fixed; the panels
    and the text table name them as the backbone does."""
    from mmtopo.models import TopoMobileNetV2
    from mmtopo.visualization.text import format_topology
    model = TopoMobileNetV2(
        widen_factor=0.25, topology=dict(type='learnable', init='uniform'))
    graphs = model.topology_graphs()
    assert [g.name for g in graphs] == model.stage_names
    fig = draw_topology(graphs)
    assert len(fig.axes) == 8  # seven stages and the colour bar
    titles = [ax.get_title(loc='left') for ax in fig.axes[:7]]
    assert titles[0] == 'layer1: 1 block, 1/1 edges active, 0 dead (fixed)'
    assert titles[3] == (
        'layer4: 4 blocks, 10/10 edges active, 0 dead (learnable)')
    table = format_topology(graphs)
    assert 'layer7: 1 block, 1/1 edges active (fixed)' in table
    assert figure_to_rgb(fig).shape[2] == 3
