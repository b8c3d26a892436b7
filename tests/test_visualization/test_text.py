from mmtopo.models.graph import StageGraphInfo
from mmtopo.visualization import format_topology


def test_format_topology_is_an_adjacency_table_per_stage():
    graphs = [
        StageGraphInfo(
            'layer1',
            3,
            True, ((0, 1, 1.0), (0, 2, 0.0), (1, 2, -0.456)),
            live=(True, True, True)),
        StageGraphInfo(
            'layer2',
            3,
            False, ((0, 1, 1.0), (1, 2, 1.0)),
            live=(True, True, True)),
    ]
    assert format_topology(graphs).split('\n') == [
        'layer1: 2 blocks, 2/3 edges active (learnable)',
        '           1   out',
        '     0  1.00     .',
        '     1       -0.46',
        'layer2: 2 blocks, 2/2 edges active (fixed)',
        '           1   out',
        '     0  1.00      ',
        '     1        1.00',
    ]
