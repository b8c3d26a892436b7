import pytest
import torch

from mmtopo.models import TopoResNet
from mmtopo.utils.node_similarity import node_output_correlation


def backbone(**kwargs):
    torch.manual_seed(0)
    model = TopoResNet(
        depth=34,
        base_channels=4,
        stem_channels=4,
        topology=dict(type='learnable', init='uniform'),
        **kwargs)
    model.init_weights()  # where zero_init_residual acts, as the runner's
    return model


def test_zero_initialised_residuals_make_every_node_the_same_map():
    # every residual branch starts at zero: each block passes on the
    # (post-ReLU) sum of copies of node 0's output, so all nodes are equal
    model = backbone()
    corr = node_output_correlation(model, torch.randn(2, 3, 32, 32))
    assert sorted(corr) == ['layer1', 'layer2', 'layer3', 'layer4']
    for value in corr.values():
        assert value == pytest.approx(1.0, abs=1e-9)


def test_the_mean_pairwise_correlation_of_the_blocks_outputs():
    model = backbone(zero_init_residual=False)
    model.train()  # restored afterwards; the pass itself runs in eval mode
    x = torch.randn(2, 3, 32, 32)
    corr = node_output_correlation(model, x)
    assert model.training
    # by hand: the eval-mode outputs of layer2's blocks
    seen = []
    handles = [
        b.register_forward_hook(lambda m, i, o: seen.append(o))
        for b in model.layer2
    ]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    flat = [y.double().flatten() for y in seen]
    pairs = [
        torch.corrcoef(torch.stack([a, b]))[0, 1] for k, a in enumerate(flat)
        for b in flat[k + 1:]
    ]
    assert len(seen) == 4
    assert corr['layer2'] == pytest.approx(
        float(sum(pairs) / len(pairs)), abs=1e-9)
    assert corr['layer2'] < 0.99  # random branches: distinct maps


def test_nodes_a_pruned_graph_does_not_run_are_left_out():
    model = backbone(zero_init_residual=False)
    with torch.no_grad():  # layer1's block 1 feeds nothing: not run
        model.layer1.edge_weights[1, 2:] = 0.0
    seen = []
    model.layer1[1].register_forward_hook(lambda m, i, o: seen.append(o))
    corr = node_output_correlation(model, torch.randn(1, 3, 32, 32))
    assert seen == [] and 'layer1' in corr
