import pytest
import torch

from mmtopo.models.topology import (build_stage_topology, build_topologies,
                                    check_connected)


def edges(topo):
    return sorted(tuple(e) for e in topo.mask.nonzero().tolist())


def assert_dag_and_connected(mask):
    n = mask.shape[0]
    assert not mask.tril().any(), 'edges must run from low to high nodes'
    assert all(mask[:, j].any() for j in range(1, n))
    assert all(mask[i].any() for i in range(n - 1))


def test_residual_is_the_chain_with_unit_weights():
    topo = build_stage_topology(dict(type='residual'), 3, 0)
    assert edges(topo) == [(0, 1), (1, 2), (2, 3)]
    assert topo.weights[0, 1] == topo.weights[1, 2] == topo.weights[2, 3] == 1
    assert topo.weights.sum() == 3 and not topo.learnable


def test_complete_averages_inputs():
    topo = build_stage_topology(dict(type='complete'), 3, 0)
    assert len(edges(topo)) == 6
    # node 3 has inputs 0, 1, 2
    assert torch.allclose(topo.weights[:, 3], torch.tensor([1 / 3] * 3 + [0]))
    assert torch.allclose(topo.weights.sum(0)[1:], torch.ones(3))


@pytest.mark.parametrize('init,expected_sum', [('residual', 4.0),
                                               ('uniform', 4.0),
                                               ('ones', 10.0)])
def test_learnable_inits(init, expected_sum):
    topo = build_stage_topology(dict(type='learnable', init=init), 4, 0)
    assert topo.learnable and len(edges(topo)) == 10
    assert topo.weights.sum().item() == pytest.approx(expected_sum)
    if init == 'residual':
        assert torch.equal(topo.weights, torch.diag(torch.ones(4), 1))


@pytest.mark.parametrize('spec', [
    dict(type='random', graph='er', p=0.3, seed=1),
    dict(type='random', graph='ws', k=2, p=0.5, seed=2),
    dict(type='random', graph='ba', m=1, seed=3),
    dict(type='random', graph='er', p=0.0, seed=0),
])
def test_random_graphs_are_repaired_dags(spec):
    for num_blocks in (2, 3, 6, 23):
        topo = build_stage_topology(spec, num_blocks, 1)
        assert_dag_and_connected(topo.mask)
        assert torch.allclose(topo.weights.sum(0)[1:], torch.ones(num_blocks))


def test_random_seed_reproducible_and_stage_dependent():
    spec = dict(type='random', graph='er', p=0.5, seed=7)
    a = build_stage_topology(spec, 6, 0)
    b = build_stage_topology(spec, 6, 0)
    c = build_stage_topology(dict(spec, seed=8), 6, 0)
    d = build_stage_topology(spec, 6, 1)
    assert torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, c.mask)
    assert not torch.equal(a.mask, d.mask)


def test_er_p1_is_complete():
    topo = build_stage_topology(dict(type='random', graph='er', p=1.0), 5, 0)
    assert len(edges(topo)) == 15


def test_custom_edges_and_weights():
    topo = build_stage_topology(
        dict(
            type='custom',
            edges=[(0, 1), (0, 2), (1, 2)],
            weights=[0.5, 2.0, -1.0],
            learnable=True), 2, 0)
    assert edges(topo) == [(0, 1), (0, 2), (1, 2)]
    assert topo.weights[0, 2] == 2.0 and topo.weights[1, 2] == -1.0
    assert topo.learnable


@pytest.mark.parametrize('spec,exc,words', [
    (dict(type='dense'), KeyError, ["topology.type 'dense'"]),
    (dict(init='ones'), ValueError, ['"type"']),
    (dict(type='learnable',
          init='zeros'), ValueError, ['topology.init', "'zeros'"]),
    (dict(type='random', graph='er', p=1.5), ValueError, ['topology.p', '1.5'
                                                          ]),
    (dict(type='random', graph='er', p=-0.1), ValueError, ['topology.p']),
    (dict(type='random', graph='ws', k=3,
          p=0.1), ValueError, ['topology.k', '3']),
    (dict(type='random', graph='ba', m=0), ValueError, ['topology.m', '0']),
    (dict(type='random', graph='sbm'), ValueError, ['topology.graph', "'sbm'"
                                                    ]),
    (dict(type='random', graph='er', q=0.1), ValueError, ["'q'"]),
    (dict(type='custom', edges=[(0, 1), (1, 2),
                                (2, 1)]), ValueError, ['(2, 1)', 'cyclic']),
    (dict(type='custom', edges=[(0, 1), (1, 1),
                                (1, 2)]), ValueError, ['(1, 1)', 'cyclic']),
    (dict(type='custom', edges=[
        (0, 1), (1, 5)
    ]), ValueError, ['(1, 5)', 'out of range', '0..2']),
    (dict(type='custom', edges=[(0, 2)]), ValueError, ['node 1 has no input']),
    (dict(type='custom', edges=[(0, 1), (0, 2)
                                ]), ValueError, ['node 1 has no output']),
    (dict(type='custom', edges=[(0, 1), (1, 2)], weights=[1.0]), ValueError,
     ['topology.weights has 1 values for 2 edges']),
    (dict(type='custom', edges=[(0, 1), (0, 1),
                                (1, 2)]), ValueError, ['listed twice']),
])
def test_bad_specs_name_field_and_value(spec, exc, words):
    with pytest.raises(exc) as info:
        build_stage_topology(spec, 2, 0)
    for word in words:
        assert word in str(info.value)


def test_per_stage_list_must_match_num_stages():
    with pytest.raises(
            ValueError, match='lists 3 stage specs but '
            'num_stages is 4'):
        build_topologies([dict(type='residual')] * 3, 4, (2, 2, 2, 2))
    topos = build_topologies(
        [dict(type='residual'), dict(type='complete')], 2, (2, 3))
    assert [t.mask.shape[0] for t in topos] == [3, 4]
    assert len(edges(topos[1])) == 6


def test_check_connected_names_the_stage():
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 1] = True
    with pytest.raises(ValueError, match='stage X: node 2 has no input'):
        check_connected(mask, 'stage X')


# --- the random graphs follow their definitions -----------------------------


def _ring_lattice(n, k):
    return {
        tuple(sorted((i, (i + d) % n)))
        for i in range(n)
        for d in range(1, k // 2 + 1)
    }


def test_ws_without_rewiring_is_the_ring_lattice():
    import numpy as np

    from mmtopo.models.topology import _ws_edges
    for n, k in ((8, 2), (10, 4), (12, 6)):
        edges = _ws_edges(n, np.random.default_rng(0), k=k, p=0.0)
        assert set(edges) == _ring_lattice(n, k)
        degree = np.bincount(np.array(edges).ravel(), minlength=n)
        assert (degree == k).all()


def test_ws_rewiring_moves_far_ends_and_keeps_the_edge_count():
    import numpy as np

    from mmtopo.models.topology import _ws_edges
    n, k = 16, 4
    lattice = _ring_lattice(n, k)
    moved = []
    for seed in range(50):
        edges = _ws_edges(n, np.random.default_rng(seed), k=k, p=0.3)
        assert len(set(edges)) == len(edges) == n * k // 2
        assert all(i < j for i, j in edges)  # no loops, oriented low->high
        moved.append(len(set(edges) - lattice) / len(edges))
    # each edge is rewired with probability 0.3 (a few land on a lattice
    # edge that was itself rewired away): the mean over 50 graphs of 32
    # edges has a standard error of about 0.015
    assert 0.2 < sum(moved) / len(moved) < 0.35
    all_moved = _ws_edges(n, np.random.default_rng(0), k=k, p=1.0)
    assert len(set(all_moved) - lattice) > 0.6 * len(all_moved)


def test_ba_adds_m_edges_per_new_node_preferring_high_degree():
    import numpy as np

    from mmtopo.models.topology import _ba_edges
    n, m = 20, 2
    first_degree, last_degree = [], []
    for seed in range(100):
        edges = _ba_edges(n, np.random.default_rng(seed), m=m)
        assert len(set(edges)) == len(edges) == (n - m) * m
        into = np.bincount([j for _, j in edges], minlength=n)
        assert (into[:m] == 0).all() and (into[m:] == m).all()
        assert all(i < j for i, j in edges)
        degree = np.bincount(np.array(edges).ravel(), minlength=n)
        first_degree.append(degree[:m].mean())
        last_degree.append(degree[-1])
    # the last node only has its own m edges; the first ones collect many
    # through preferential attachment
    assert all(d == m for d in last_degree)
    assert np.mean(first_degree) > 2.5 * m


def test_er_edge_count_follows_p():
    import numpy as np

    from mmtopo.models.topology import _er_edges
    n, p = 12, 0.3
    counts = [
        len(_er_edges(n, np.random.default_rng(s), p=p)) for s in range(200)
    ]
    pairs = n * (n - 1) // 2
    # mean of 200 binomial(66, 0.3) counts: standard error 0.26 around 19.8
    assert abs(np.mean(counts) - p * pairs) < 1.5
    assert _er_edges(n, np.random.default_rng(0), p=0.0) == []
    assert len(_er_edges(n, np.random.default_rng(0), p=1.0)) == pairs


def test_a_seed_names_the_same_graph_in_every_release():
    """Configs name a random graph by its seed (``seed=5``), so the sampler
    must draw exactly the graph it drew before: a change here would give
    users a different network under an unchanged config. These are the
    graphs of mmtopo's first release."""
    import numpy as np

    from mmtopo.models.topology import _ba_edges, _er_edges, _ws_edges
    assert sorted(_ws_edges(8, np.random.default_rng(5), k=4,
                            p=0.4)) == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 6),
                                        (1, 2), (1, 6), (1, 7), (2, 4), (2, 5),
                                        (3, 5), (3, 7), (4, 5), (5, 6), (5, 7),
                                        (6, 7)]
    assert _ba_edges(
        8, np.random.default_rng(5), m=2) == [(1, 2), (0, 2), (1, 3), (0, 3),
                                              (1, 4), (0, 4), (0, 5), (4, 5),
                                              (3, 6), (1, 6), (2, 7), (6, 7)]
    assert _er_edges(
        6, np.random.default_rng(5), p=0.5) == [(0, 4), (0, 5), (1, 2), (1, 3),
                                                (1, 4), (1, 5), (2, 5), (3, 4)]


@pytest.mark.parametrize('spec,words', [
    (dict(graph='ws', k=3, p=0.1), 'topology.k must be an even integer in '
     '[2, 4] for a stage of 5 nodes, got 3'),
    (dict(graph='ws', k=6, p=0.1), 'in [2, 4] for a stage of 5 nodes, got 6'),
    (dict(graph='ws', k=5, p=0.1), 'got 5'),
    (dict(graph='ba', m=5), 'topology.m must be an integer in [1, 4] for a '
     'stage of 5 nodes, got 5'),
])
def test_random_graph_sizes_are_checked_against_the_stage(spec, words):
    """A 4-block stage has 5 nodes: k must be even and below 5, m below 5."""
    with pytest.raises(ValueError) as info:
        build_stage_topology(dict(type='random', **spec), 4, 0)
    assert words in str(info.value)


def test_widest_path_follows_the_graph_order():
    """0->1 (0.9), 1->2 (0.1), 0->2 (0.05): the widest path is 0->1->2 of
    width 0.1, which needs node 1's width before the edges leaving it."""
    from mmtopo.models.graph import widest_path, widest_path_edges
    edges = [(1, 2, 0.1), (0, 1, 0.9), (0, 2, 0.05)]
    assert widest_path_edges(3, edges) == (0.1, [(0, 1), (1, 2)])
    assert widest_path(3, edges) == 0.1
    # a longer one: the output's width, not another node's
    edges = [(0, 1, 0.8), (1, 2, -0.7), (2, 4, 0.3), (0, 3, 0.2), (3, 4, 0.9),
             (1, 4, 0.25)]
    assert widest_path_edges(5, edges) == (0.3, [(0, 1), (1, 2), (2, 4)])
    # an output with no input: width 0, no path (and no endless walk back)
    assert widest_path_edges(3, [(0, 1, 0.5)]) == (0.0, [])


def test_bridge_edges_are_the_edges_on_every_path():
    """A chain: every edge. A skip 0->2 around block 1: only 2->3 remains
    on every path. Zero edges, and edges off every path (1->3 from a node
    nothing reaches), are never bridges; a cut stage has none."""
    from mmtopo.models.graph import bridge_edges
    chain = [(0, 1, 0.5), (1, 2, -0.3), (2, 3, 1.0), (0, 2, 0.0)]
    assert bridge_edges(4, chain) == [(0, 1), (1, 2), (2, 3)]
    skip = [(0, 1, 0.5), (1, 2, -0.3), (2, 3, 1.0), (0, 2, 0.2)]
    assert bridge_edges(4, skip) == [(2, 3)]
    # two parallel two-edge paths meet only at the ends: no bridge
    square = [(0, 1, 1.0), (1, 3, 1.0), (0, 2, 1.0), (2, 3, 1.0)]
    assert bridge_edges(4, square) == []
    # 1 is cut off from node 0, so 1->3 carries no path
    dangling = [(0, 1, 0.0), (1, 3, 0.7), (0, 2, 0.4), (2, 3, 0.6)]
    assert bridge_edges(4, dangling) == [(0, 2), (2, 3)]
    assert bridge_edges(3, [(0, 1, 0.5), (1, 2, 0.0)]) == []


def test_random_defaults_to_seeded_erdos_renyi():
    default = build_stage_topology(dict(type='random', p=0.5), 4, 1)
    explicit = build_stage_topology(
        dict(type='random', graph='er', p=0.5, seed=0), 4, 1)
    assert torch.equal(default.mask, explicit.mask)
    assert not torch.equal(
        default.mask,
        build_stage_topology(
            dict(type='random', graph='er', p=0.5, seed=1), 4, 1).mask)


@pytest.mark.parametrize('spec', [
    dict(type='residual'),
    dict(type='complete'),
    dict(type='learnable'),
    dict(type='random', graph='ws', k=2, p=0.5),
    dict(type='custom', edges=[(0, 1), (1, 2), (2, 3)])
])
def test_every_mask_is_boolean(spec):
    topo = build_stage_topology(spec, 3, 0)
    assert topo.mask.dtype == torch.bool
    assert topo.weights.dtype == torch.float32


@pytest.mark.parametrize('edges,message', [
    (None, 'topology[2] (custom): topology.edges must list the edges (i, j)'),
    ([], 'topology[2] (custom): topology.edges must list the edges (i, j)'),
    ([(0, 1, 2)], 'topology[2] (custom): edge (0, 1, 2) is not a pair of '
     'node indices (i, j)'),
    ([(0, 1), (1, 0)], 'topology[2] (custom): edge (1, 0) does not run from '
     'a lower to a higher node: it would make the graph cyclic'),
])
def test_custom_edge_errors_in_full(edges, message):
    with pytest.raises(ValueError) as info:
        build_stage_topology(dict(type='custom', edges=edges), 2, 2)
    assert str(info.value) == message


@pytest.mark.parametrize('spec,message', [
    (dict(type='custom', edges=[(0, 2)]),
     'topology[0] (custom): node 1 has no input edge (every node 1..2 needs '
     'one, unless listed in topology.removed)'),
    (dict(type='custom', edges=[(0, 1), (0, 2)]),
     'topology[0] (custom): node 1 has no output edge (every node 0..1 needs '
     'one, unless listed in topology.removed)'),
    (dict(type='custom', edges=[(0, 1), (0, 2)], removed=[1]),
     'topology[0] (custom): node 1 is removed but has edges [(0, 1)]'),
    (dict(type='custom', edges=[(0, 2), (1, 2)], removed=[1]),
     'topology[0] (custom): node 1 is removed but has edges [(1, 2)]'),
])
def test_graph_errors_in_full(spec, message):
    with pytest.raises(ValueError) as info:
        build_stage_topology(spec, 2, 0)
    assert str(info.value) == message


@pytest.mark.parametrize('spec,message', [
    (dict(type='learnable', foo=1),
     "topology[3] of type 'learnable' got unknown field(s) ['foo']; it "
     "accepts ['allow_cut', 'init']"),
    (dict(type='custom', edges=[(0, 1), (1, 2)], weight=[1, 1]),
     "topology[3] of type 'custom' got unknown field(s) ['weight']; it "
     "accepts ['allow_cut', 'edges', 'learnable', 'removed', 'routed', "
     "'router', 'threshold', 'weights']"),
    (dict(type='dynamic', tau=0.5),
     "topology[3] of type 'dynamic' got unknown field(s) ['tau']; it "
     "accepts ['allow_cut', 'init', 'router', 'threshold']"),
    (dict(type='residual', init='ones'),
     "topology[3] of type 'residual' got unknown field(s) ['init']; it "
     'accepts []'),
    (dict(type='random', graph='er', p=0.5, k=2),
     "topology of type 'random' with graph='er' (besides 'graph' and "
     "'seed') got unknown field(s) ['k']; it accepts ['p']"),
    (dict(type='random', graph='ws', k=2),
     "topology of type 'random' with graph='ws' needs the field(s) ['p']"),
])
def test_an_unknown_or_missing_field_is_named_with_what_the_type_takes(
        spec, message):
    with pytest.raises(ValueError) as info:
        build_stage_topology(spec, 2, 3)
    assert str(info.value) == message


def test_topology_of_the_wrong_kind_is_named():
    with pytest.raises(ValueError) as info:
        build_topologies('learnable', 4, [2, 2, 2, 2])
    assert str(info.value) == ("topology must be a dict or a list of dicts, "
                               "got 'learnable'")


def test_ws_k_must_stay_below_the_number_of_nodes():
    with pytest.raises(ValueError) as info:
        build_stage_topology(dict(type='random', graph='ws', k=4, p=0.1), 3, 0)
    assert ('topology.k must be an even integer in [2, 3] for a stage of 4 '
            'nodes, got 4') in str(info.value)
