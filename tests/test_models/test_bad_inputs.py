"""Bad numbers, bad types and cut graphs are refused where they enter,
naming the field and the value; a stage is never silently cut."""
from unittest import mock

import pytest
import torch
from mmengine.logging import MessageHub

from mmtopo.models import TopoResNet
from mmtopo.models.topology import build_stage_topology

SMALL = dict(depth=18, base_channels=4, stem_channels=4, out_indices=(3, ))
CHAIN = [(0, 1), (1, 2)]
SKIP = [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize('spec,message', [
    (dict(type='custom', edges=CHAIN, weights=[1.0, float('nan')]),
     'topology[0] (custom): topology.weights[1] (edge (1, 2)) must be a '
     'finite number, got nan'),
    (dict(type='custom', edges=CHAIN, weights=[float('inf'), 1.0]),
     'topology[0] (custom): topology.weights[0] (edge (0, 1)) must be a '
     'finite number, got inf'),
    (dict(type='custom', edges=CHAIN, weights=['1', 1.0]),
     "topology.weights[0] (edge (0, 1)) must be a finite number, got '1'"),
    (dict(type='custom', edges=[
        (0.5, 1), (1, 2)
    ]), 'topology[0] (custom): edge (0.5, 1) is not a pair of node indices '
     '(i, j)'),
    (dict(type='custom', edges=[
        (True, 1), (1, 2)
    ]), 'edge (True, 1) is not a pair of node indices'),
    (dict(type='custom', edges=CHAIN, learnable='no'),
     "topology[0] (custom): topology.learnable must be True or False, got "
     "'no'"),
    (dict(type='custom', edges=CHAIN, removed=1),
     'topology[0] (custom): topology.removed must be a list of node '
     'indices, got 1'),
    (dict(type='custom', edges='01,12'),
     "topology.edges must be a list of pairs (i, j), got '01,12'"),
    (dict(type='learnable', init='Uniform'),
     "topology.init must be one of ['residual', 'uniform', 'ones'], got "
     "'Uniform'"),
    (dict(type='random', graph='er',
          p='0.5'), "topology.p must be a finite number in [0, 1], got '0.5'"),
    (dict(type='random', graph='er', p=0.5,
          seed=1.0), 'topology.seed must be an integer >= 0, got 1.0'),
    (dict(type='dynamic', threshold=1.5),
     'topology.threshold must be a number in [0, 1) (every gate starts at '
     '1; a threshold of 1 or more closes them all), got 1.5'),
    (dict(type='dynamic',
          threshold=1.0), 'topology.threshold must be a number in [0, 1)'),
])
def test_bad_spec_values_are_refused_naming_field_and_value(spec, message):
    with pytest.raises(ValueError) as info:
        build_stage_topology(spec, 2, 0)
    assert message in str(info.value)


@pytest.mark.parametrize('spec', [
    dict(type='custom', edges=CHAIN, weights=[0.0, 0.0]),
    dict(type='custom', edges=SKIP, weights=[1.0, 0.0, 0.0]),
    dict(type='learnable', init='residual', allow_cut=False),
])
def test_a_spec_that_cuts_its_stage_is_refused_unless_asked_for(spec):
    if spec['type'] == 'learnable':  # a learnable init never cuts
        build_stage_topology(spec, 2, 0)
        return
    with pytest.raises(ValueError) as info:
        build_stage_topology(spec, 2, 0)
    assert str(
        info.value).startswith('topology[0] (custom): the zero-weight edges ')
    assert 'cut every path from the stage input to its output' in str(
        info.value)
    assert 'allow_cut=True' in str(info.value)
    topo = build_stage_topology(dict(spec, allow_cut=True), 2, 0)
    assert topo.allow_cut


LOG = 'mmtopo.models.layers.stage_graph.print_log'


def cut_reports(model, calls: int = 2) -> list:
    """The warnings the stage graphs log over ``calls`` eval forwards."""
    model.eval()
    with mock.patch(LOG) as log:
        for _ in range(calls):
            model(torch.randn(1, 3, 32, 32))
    return [
        c.args[0] for c in log.call_args_list
        if 'constant zero output' in c.args[0]
    ]


def test_a_stage_cut_after_building_is_reported_once():
    """An edit that cuts a stage (here by hand) is said in the log, once,
    with its edges."""
    model = TopoResNet(**SMALL, topology=dict(type='learnable'))
    with torch.no_grad():
        model.layer2.edge_weights.zero_()
    reports = cut_reports(model)
    assert len(reports) == 1
    assert reports[0].startswith(
        'a stage graph computes a constant zero output: every path from its '
        'input to its output has a zero edge (edges (i, j, weight) '
        '[(0, 1, 0.0), (0, 2, 0.0), (1, 2, 0.0)])')


def test_a_cut_stage_built_on_purpose_is_not_reported():
    model = TopoResNet(
        **SMALL,
        topology=[
            dict(type='residual'),
            dict(
                type='custom',
                edges=SKIP,
                weights=[1.0, 0.0, 0.0],
                allow_cut=True),
            dict(type='residual'),
            dict(type='residual')
        ])
    assert not model.layer2.connects_input_to_output()
    assert cut_reports(model) == []


def test_a_checkpoint_with_non_finite_edges_is_refused_at_load():
    model = TopoResNet(**SMALL, topology=dict(type='learnable'))
    state = model.state_dict()
    state['layer3.edge_weights'][0, 2] = float('nan')
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    assert str(info.value) == (
        'checkpoint edge weights at layer3.edge_weights are not finite: '
        '(i, j, weight) [(0, 2, nan)] (the run that saved it diverged)')


def test_a_checkpoint_that_cuts_a_stage_is_refused_at_load():
    model = TopoResNet(**SMALL, topology=dict(type='learnable'))
    state = model.state_dict()
    state['layer1.edge_weights'][1, 2] = 0.0  # the chain's last edge
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    assert str(info.value).startswith(
        'checkpoint edge weights at layer1.edge_weights cut every path '
        'through the stage (zero edges [(0, 2), (1, 2)]): it would output '
        'zeros; set allow_cut=True')


def test_adapt_refuses_to_leave_a_stage_cut():
    """A learnable checkpoint whose chain edge was pruned, loaded into the
    residual wiring on purpose ('adapt'): the residual stage keeps only
    the chain, whose pruned edge cuts it."""
    learned = TopoResNet(**SMALL, topology=dict(type='learnable'))
    state = learned.state_dict()
    state['layer2.edge_weights'][1, 2] = 0.0
    state['layer2.edge_weights'][0, 2] = 0.7  # the learnable one is whole
    residual = TopoResNet(**SMALL, graph_mismatch='adapt')
    with pytest.raises(ValueError) as info:
        residual.load_state_dict(state)
    assert str(info.value).startswith(
        'checkpoint edge weights at layer2.edge_weights cut every path '
        'through the stage')


def test_non_finite_edges_in_training_are_refused_where_they_are_read():
    """Edge weights scaled by 1e20 overflow the step; the next forward's
    host read names the stage, the edges and the iteration."""
    torch.manual_seed(0)
    model = TopoResNet(
        **SMALL,
        norm_eval=False,
        topology=dict(type='learnable', init='uniform'))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with torch.no_grad():
        model.layer4.edge_weights.mul_(1e20)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 7)
    model(torch.randn(2, 3, 32, 32))[0].pow(2).sum().backward()
    optimizer.step()
    assert not torch.isfinite(model.layer4.edge_weights).all()
    with pytest.raises(FloatingPointError) as info:
        model(torch.randn(2, 3, 32, 32))
    assert str(info.value).startswith('layer')
    assert 'are not finite at iteration 7: the training diverged' in str(
        info.value)
