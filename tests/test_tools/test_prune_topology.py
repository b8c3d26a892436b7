"""tools/model_converters/prune_topology.py: a trained learnable checkpoint
becomes a fixed, smaller config + checkpoint computing the same function."""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.helpers import REPO, load_tool

DIGITS = REPO / 'configs/cls/topo_resnet18_cifar_digits.py'
DIGITS_RESIDUAL = REPO / 'configs/cls/topo_resnet18_cifar_digits_residual.py'


def tool():
    return load_tool('tools/model_converters/prune_topology.py')


def build(config, checkpoint=None):
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(config))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, str(checkpoint), strict=True, logger='silent')
    return model


def trained_like(path):
    """A digits classifier with unequal edges, a few pruned: layer2's
    block 1 loses its only way to the output (edge 1->2), and layer3's
    0->2 edge is tiny."""
    torch.manual_seed(0)
    model = build(DIGITS)
    with torch.no_grad():
        for stage in model.backbone.stage_graphs:
            stage.edge_weights.add_(
                torch.rand(stage.edge_weights.shape) * stage.edge_mask)
        model.backbone.layer2.edge_weights[1, 2] = 0.0
        model.backbone.layer3.edge_weights[0, 2] = 1e-4
    torch.save(dict(state_dict=model.state_dict()), path)
    return model


def test_pruned_digits_classifier_is_the_same_function(tmp_path):
    model = trained_like(tmp_path / 'trained.pth')
    assert tool().main([
        str(DIGITS),
        str(tmp_path / 'trained.pth'),
        str(tmp_path / 'out'), '--threshold', '1e-3'
    ]) == 0
    cfg_file = tmp_path / 'out' / 'topo_resnet18_cifar_digits_pruned.py'
    ckpt = tmp_path / 'out' / 'topo_resnet18_cifar_digits_pruned.pth'
    cfg = Config.fromfile(str(cfg_file))
    topology = cfg.model.backbone.topology
    assert all(spec['type'] == 'custom' and not spec['learnable']
               for spec in topology)
    assert topology[1]['removed'] == [1]
    assert 'EdgeSparsityHook' not in [h['type'] for h in cfg.custom_hooks]
    pruned = build(cfg_file, ckpt)
    assert not any(
        k.startswith('backbone.layer2.1.')
        for k in torch.load(ckpt)['state_dict'])
    assert sum(p.numel()
               for p in pruned.parameters()) < sum(p.numel()
                                                   for p in model.parameters())
    with torch.no_grad():  # what the threshold cut
        model.backbone.layer3.edge_weights[0, 2] = 0.0
    model.eval()
    pruned.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            pruned.backbone(x)[-1], model.backbone(x)[-1], rtol=0, atol=1e-5)
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-5)


def test_fails_clearly(tmp_path):
    residual = build(DIGITS_RESIDUAL)
    torch.save(dict(state_dict=residual.state_dict()), tmp_path / 'res.pth')
    with pytest.raises(ValueError, match='has no learnable edges'):
        tool().main([
            str(DIGITS_RESIDUAL),
            str(tmp_path / 'res.pth'),
            str(tmp_path / 'out')
        ])
    trained_like(tmp_path / 'trained.pth')
    with pytest.raises(
            ValueError,
            match=r'layer\d: pruning at threshold '
            r'100\.0 cuts every path .* thresholds below'):
        tool().main([
            str(DIGITS),
            str(tmp_path / 'trained.pth'),
            str(tmp_path / 'out'), '--threshold', '100'
        ])
    # the learnable checkpoint against the residual config: graph mismatch
    with pytest.raises(
            ValueError,
            match="checkpoint graph does not fit the "
            "model at 'backbone.layer1.edge_mask'"):
        tool().main([
            str(DIGITS_RESIDUAL),
            str(tmp_path / 'trained.pth'),
            str(tmp_path / 'out')
        ])


def test_load_from_the_learned_checkpoint_into_the_pruned_config(tmp_path):
    """The documented route to fine-tune the pruned graph from the original
    checkpoint: the pruned config with ``graph_mismatch='adapt'`` and
    ``load_from`` the learned one (mmengine loads non-strictly) gets the
    pruned checkpoint's weights, the dropped blocks' ones left out."""
    from mmengine.runner import load_checkpoint
    trained_like(tmp_path / 'trained.pth')
    tool().main([
        str(DIGITS),
        str(tmp_path / 'trained.pth'),
        str(tmp_path / 'out'), '--threshold', '1e-3'
    ])
    cfg_file = tmp_path / 'out' / 'topo_resnet18_cifar_digits_pruned.py'
    cfg = Config.fromfile(str(cfg_file))
    cfg.model.backbone.graph_mismatch = 'adapt'
    cfg.dump(str(tmp_path / 'finetune.py'))
    model = build(tmp_path / 'finetune.py')
    load_checkpoint(
        model, str(tmp_path / 'trained.pth'), strict=False, logger='silent')
    pruned = torch.load(tmp_path / 'out' /
                        'topo_resnet18_cifar_digits_pruned.pth')['state_dict']
    state = model.state_dict()
    assert sorted(state) == sorted(pruned)
    for key, value in pruned.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize(
    'config,stage,block', [
        ('configs/cls/topo_mobilenet-v2_8xb32_in1k.py', 'layer4', 2),
        ('configs/cls/topo_regnetx-3.2gf_8xb64_in1k.py', 'layer3', 5),
    ],
    ids=['mobilenet_v2', 'regnetx-3.2gf'])
def test_other_families_prune_to_the_same_function(tmp_path, config, stage,
                                                   block):
    """The ImageNet configs of TopoMobileNetV2 and TopoRegNet: a learned
    checkpoint whose ``stage`` lost ``block`` becomes a fixed config and a
    checkpoint without that block, computing the same classifier."""
    torch.manual_seed(0)
    model = build(REPO / config)
    with torch.no_grad():
        for s in model.backbone.stage_graphs:
            if s.learnable:
                s.edge_weights.add_(
                    torch.rand(s.edge_weights.shape) * s.edge_mask)
        getattr(model.backbone, stage).edge_weights[:, block] = 0.0
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'learned.pth')
    assert tool().main([
        str(REPO / config),
        str(tmp_path / 'learned.pth'),
        str(tmp_path / 'out')
    ]) == 0
    stem = (tmp_path / 'out' / Path(config).stem).as_posix() + '_pruned'
    pruned = build(stem + '.py', stem + '.pth')
    index = model.backbone.stage_names.index(stage)
    assert pruned.backbone.stage_graphs[index].removed == (block, )
    assert not any(
        k.startswith(f'backbone.{stage}.{block}.')
        for k in pruned.state_dict())
    model.eval()
    pruned.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    'config', [
        'configs/cls/topo_resnet18_cifar_digits_dynamic.py',
        'configs/cls/topo_mobilenet-v2_8xb32_in1k.py'
    ],
    ids=['digits_dynamic', 'mobilenet_v2_dynamic'])
def test_a_dynamic_checkpoint_prunes_to_the_same_function(tmp_path, config):
    """A dynamic model (routers with varying gates) whose layer2 loses
    edge 0 -> 2: the pruned config keeps the routers of the nodes kept,
    their inputs and gates of the pruned edges cut out, and computes the
    same classifier with fewer parameters."""
    cfg = Config.fromfile(str(REPO / config))
    cfg.model.backbone.topology = dict(type='dynamic', init='uniform')
    cfg.dump(str(tmp_path / 'dynamic.py'))
    torch.manual_seed(0)
    model = build(tmp_path / 'dynamic.py')
    with torch.no_grad():
        for stage in model.backbone.stage_graphs:
            for router in stage.routers.values():
                router.reduce.weight.mul_(0.1)
                router.gate.weight.normal_(0, 0.5)
        model.backbone.layer2.edge_weights[0, 2] = 0.0
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'learned.pth')
    assert tool().main([
        str(tmp_path / 'dynamic.py'),
        str(tmp_path / 'learned.pth'),
        str(tmp_path / 'out')
    ]) == 0
    stem = (tmp_path / 'out' / 'dynamic_pruned').as_posix()
    spec = Config.fromfile(stem + '.py').model.backbone.topology[1]
    assert spec['router'] == dict(type='EdgeRouter') and spec['routed']
    assert (0, 2) not in [tuple(e) for e in spec['edges']]
    pruned = build(stem + '.py', stem + '.pth')
    ours = pruned.backbone.layer2.routers['2']
    theirs = model.backbone.layer2.routers['2']
    assert ours.num_inputs == theirs.num_inputs - 1
    assert sum(p.numel()
               for p in pruned.parameters()) < sum(p.numel()
                                                   for p in model.parameters())
    model.eval()
    pruned.eval()
    x = torch.randn(2, 3, 32, 32) if 'digits' in config else \
        torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-5)


def test_an_ema_checkpoint_prunes_the_edges_its_raw_weights_pruned(
        tmp_path, capsys):
    """mmengine's EMAHook saves averaged weights as ``state_dict`` (a pruned
    edge's average is small, not zero) and the raw ones under
    ``ema_state_dict``: the raw zeros decide, the averages are deployed."""
    raw = trained_like(tmp_path / 'raw.pth')
    averaged = build(DIGITS)
    averaged.load_state_dict(raw.state_dict())
    with torch.no_grad():
        for stage in averaged.backbone.stage_graphs:
            stage.edge_weights.add_(1e-3 * stage.edge_mask)
    torch.save(
        dict(
            state_dict=averaged.state_dict(),
            ema_state_dict={
                'module.' + k: v
                for k, v in raw.state_dict().items()
            }), tmp_path / 'ema.pth')
    assert tool().main(
        [str(DIGITS),
         str(tmp_path / 'ema.pth'),
         str(tmp_path / 'out')]) == 0
    assert 'averaged (EMA) weights' in capsys.readouterr().out
    cfg_file = tmp_path / 'out' / 'topo_resnet18_cifar_digits_pruned.py'
    topology = Config.fromfile(str(cfg_file)).model.backbone.topology
    assert topology[1]['removed'] == [1]  # raw 1->2 was 0, its average 1e-3
    pruned = build(cfg_file,
                   tmp_path / 'out' / 'topo_resnet18_cifar_digits_pruned.pth')
    with torch.no_grad():  # the averaged model, raw zeros at zero
        averaged.backbone.layer2.edge_weights[1, 2] = 0.0
    averaged.eval()
    pruned.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), averaged(x), rtol=0, atol=1e-5)


def test_an_ema_checkpoint_of_another_model_is_refused(tmp_path):
    model = trained_like(tmp_path / 'raw.pth')
    torch.save(
        dict(
            state_dict=model.state_dict(),
            ema_state_dict=dict(steps=torch.tensor(3))), tmp_path / 'ema.pth')
    with pytest.raises(ValueError, match="ema_state_dict has no 'module"):
        tool().main(
            [str(DIGITS),
             str(tmp_path / 'ema.pth'),
             str(tmp_path / 'out')])


def test_the_search_pipeline_prunes_an_ema_checkpoint_the_same_way(tmp_path):
    from mmtopo.experiments.pipeline import prune_checkpoint
    raw = trained_like(tmp_path / 'raw.pth')
    state = raw.state_dict()
    averaged = {
        k: v + 1e-3 if k.endswith('edge_weights') else v
        for k, v in state.items()
    }
    torch.save(
        dict(
            state_dict=averaged,
            ema_state_dict={
                'module.' + k: v
                for k, v in state.items()
            }), tmp_path / 'ema.pth')
    cfg_path, _ = prune_checkpoint(
        str(DIGITS), str(tmp_path / 'ema.pth'), tmp_path / 'out')
    topology = Config.fromfile(cfg_path).model.backbone.topology
    assert topology[1]['removed'] == [1]
