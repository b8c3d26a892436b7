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
        assert torch.allclose(topo.weights.sum(0)[1:],
                              torch.ones(num_blocks))


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
        dict(type='custom', edges=[(0, 1), (0, 2), (1, 2)],
             weights=[0.5, 2.0, -1.0], learnable=True), 2, 0)
    assert edges(topo) == [(0, 1), (0, 2), (1, 2)]
    assert topo.weights[0, 2] == 2.0 and topo.weights[1, 2] == -1.0
    assert topo.learnable


@pytest.mark.parametrize('spec,exc,words', [
    (dict(type='dense'), KeyError, ["topology.type 'dense'"]),
    (dict(init='ones'), ValueError, ['"type"']),
    (dict(type='learnable', init='zeros'), ValueError,
     ['topology.init', "'zeros'"]),
    (dict(type='random', graph='er', p=1.5), ValueError,
     ['topology.p', '1.5']),
    (dict(type='random', graph='er', p=-0.1), ValueError, ['topology.p']),
    (dict(type='random', graph='ws', k=3, p=0.1), ValueError,
     ['topology.k', '3']),
    (dict(type='random', graph='ba', m=0), ValueError, ['topology.m', '0']),
    (dict(type='random', graph='sbm'), ValueError,
     ['topology.graph', "'sbm'"]),
    (dict(type='random', graph='er', q=0.1), ValueError, ["'q'"]),
    (dict(type='custom', edges=[(0, 1), (1, 2), (2, 1)]), ValueError,
     ['(2, 1)', 'cyclic']),
    (dict(type='custom', edges=[(0, 1), (1, 1), (1, 2)]), ValueError,
     ['(1, 1)', 'cyclic']),
    (dict(type='custom', edges=[(0, 1), (1, 5)]), ValueError,
     ['(1, 5)', 'out of range', '0..2']),
    (dict(type='custom', edges=[(0, 2)]), ValueError,
     ['node 1 has no input']),
    (dict(type='custom', edges=[(0, 1), (0, 2)]), ValueError,
     ['node 1 has no output']),
    (dict(type='custom', edges=[(0, 1), (1, 2)], weights=[1.0]), ValueError,
     ['topology.weights has 1 values for 2 edges']),
    (dict(type='custom', edges=[(0, 1), (0, 1), (1, 2)]), ValueError,
     ['listed twice']),
])
def test_bad_specs_name_field_and_value(spec, exc, words):
    with pytest.raises(exc) as info:
        build_stage_topology(spec, 2, 0)
    for word in words:
        assert word in str(info.value)


def test_per_stage_list_must_match_num_stages():
    with pytest.raises(ValueError, match='lists 3 stage specs but '
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
