"""FLOPs count the aggregation: one multiply-add per edge and output
element, nothing for an input that is passed through or a zero edge, and
nothing for a block that is not computed. Parameters count what the
pruned, deployed graph holds."""
import copy

import pytest
import torch
from mmdet.models.backbones import MobileNetV2, RegNet, ResNet
from mmengine.analysis import parameter_count

from mmtopo.models import TopoMobileNetV2, TopoRegNet, TopoResNet
from mmtopo.utils.complexity import BackboneCosts, count_flops


@pytest.mark.parametrize(
    'depth,topology,edges_per_stage',
    [
        (18, dict(type='residual'), [0, 0, 0, 0]),
        # a 2-block stage is a 3-node DAG: edges 0->1, 0->2, 1->2; the default
        # init='residual' starts 0->2 at zero, which computes nothing
        (18, dict(type='learnable'), [2, 2, 2, 2]),
        (18, dict(type='learnable', init='ones'), [3, 3, 3, 3]),
        # fixed 1/in-degree: node 1's single input of weight 1 passes through
        (18, dict(type='complete'), [2, 2, 2, 2]),
        (50, dict(type='learnable', init='uniform'), [6, 10, 21, 6]),
    ])
def test_aggregation_flops_are_counted(depth, topology, edges_per_stage):
    x = torch.randn(1, 3, 64, 64)
    stock = count_flops(ResNet(depth=depth), (x, ))
    model = TopoResNet(depth=depth, topology=topology)
    with torch.no_grad():
        numels = [f.numel() for f in model.eval()(x)]
    expected = sum(n * e for n, e in zip(numels, edges_per_stage))
    assert count_flops(model, (x, )) - stock == expected


def _learned_r34():
    """A TopoResNet-34 whose edges look learned: random magnitudes, some
    exact zeros, a block with no active input (layer2's 2) and one whose
    output reaches nothing (layer3's 4)."""
    torch.manual_seed(0)
    model = TopoResNet(
        depth=34, topology=dict(type='learnable', init='uniform'))
    with torch.no_grad():
        for stage in model.stage_graphs:
            w = stage.edge_weights
            w.copy_(torch.randn_like(w) * stage.edge_mask)
            w[torch.rand_like(w) < 0.3] = 0.
            w[0, -1] = 1.0  # keep every stage connected
        model.layer2.edge_weights[:, 2] = 0.
        model.layer3.edge_weights[4, :] = 0.
    return model


def test_backbone_costs_give_the_flops_of_the_pruned_model():
    """BackboneCosts, measured once on the dense graph, predicts the FLOPs
    of the model pruned at 0 exactly, and its dense total is the count of
    the model with every edge active."""
    model = _learned_r34()
    x = torch.randn(1, 3, 64, 64)
    costs = BackboneCosts(model, input_shape=(3, 64, 64))
    pruned = TopoResNet(depth=34, topology=model.export_topology())
    assert 2 in pruned.layer2.removed and 4 in pruned.layer3.removed
    assert costs.flops(model.topology_graphs()) == count_flops(pruned, (x, ))
    dense = copy.deepcopy(model)
    with torch.no_grad():
        for stage in dense.stage_graphs:
            stage.edge_weights.copy_(stage.edge_mask.float())
    assert costs.total == count_flops(dense, (x, ))
    # without gradients the unpruned model computes just what the pruned
    # one does: no zero edge, no block without input or use
    assert count_flops(model, (x, )) == count_flops(pruned, (x, ))
    assert costs.fraction(model.topology_graphs()) < 0.95


def test_backbone_costs_give_the_parameters_of_the_pruned_model():
    """The parameters of the model pruned at 0, as the deployed (fixed)
    graph holds them, without building it: the dense total is the stock
    ResNet-34's (the learned edges are buffers once deployed), and the
    ResNet-18 blocks of the ResNet-34 layout hold ResNet-18's."""
    model = _learned_r34()
    costs = BackboneCosts(model, input_shape=(3, 64, 64))
    deployed = [
        dict(spec, learnable=False) for spec in model.export_topology()
    ]
    pruned = TopoResNet(depth=34, topology=deployed)
    assert costs.params(model.topology_graphs()) == \
        parameter_count(pruned)['']
    assert costs.total_params == parameter_count(ResNet(depth=34))['']
    with torch.no_grad():
        for stage in model.stage_graphs:
            n = len(stage)
            stage.edge_weights.zero_()
            stage.edge_weights[0, 1] = stage.edge_weights[1, n] = 1.0
    assert costs.params(model.topology_graphs()) == \
        parameter_count(ResNet(depth=18))['']


def test_the_parameters_of_a_graph_with_routers_are_refused():
    model = TopoResNet(depth=18, topology=dict(type='dynamic'))
    costs = BackboneCosts(model, input_shape=(3, 32, 32))
    with pytest.raises(
            ValueError,
            match=r"the parameters of a pruned graph with routers \(dynamic "
            r"stages \['layer1', 'layer2', 'layer3', 'layer4'\]\) are not "
            'counted; budget its FLOPs instead'):
        costs.params(model.topology_graphs())


FAMILIES = {
    'regnet': (lambda: RegNet(arch='regnetx_400mf'),
               lambda t: TopoRegNet(arch='regnetx_400mf', topology=t)),
    'mobilenet_v2': (lambda: MobileNetV2(widen_factor=0.5),
                     lambda t: TopoMobileNetV2(widen_factor=0.5, topology=t)),
}


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_other_families_count_their_edges_and_predict_pruned_flops(family):
    """The residual wiring counts the stock backbone's FLOPs; a learned
    graph with a dead block costs what its pruned export costs, which
    BackboneCosts predicts without tracing it."""
    make_stock, make_topo = FAMILIES[family]
    x = torch.randn(1, 3, 64, 64)
    stock = count_flops(make_stock(), (x, ))
    assert count_flops(make_topo(dict(type='residual')), (x, )) == stock
    torch.manual_seed(0)
    model = make_topo(dict(type='learnable', init='uniform'))
    costs = BackboneCosts(model, input_shape=(3, 64, 64))
    assert costs.total == count_flops(model, (x, )) > stock
    stage = model.stage_graphs[2]  # 3 blocks in MobileNetV2, 7 in RegNet-400MF
    with torch.no_grad():
        stage.edge_weights[:, 2] = 0.  # block 2 dies
    pruned = make_topo(model.export_topology())
    assert pruned.stage_graphs[2].removed == (2, )
    assert costs.flops(model.topology_graphs()) == count_flops(
        pruned, (x, )) < costs.total
