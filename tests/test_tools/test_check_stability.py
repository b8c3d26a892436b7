"""check_stability.py renders the stock recipe with only the stated
changes: the edge lr_mult and the hook reach the learnable run alone, and
``zero_init_residual=False`` reaches every backbone."""
import pytest
from mmengine.config import Config

from tests.helpers import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis_tools/check_stability.py')


def load(tool, tmp_path, name, **recipe):
    """The run's config as the tool writes it for tools/train.py."""
    path = tmp_path / f'{name}.py'
    tool.render_config(
        'detection', name, 3, 'data/toy', heads='small',
        **recipe).dump(str(path))
    return Config.fromfile(str(path))


def test_learnable_run_gets_edge_lr_mult_and_hook(tool, tmp_path):
    cfg = load(tool, tmp_path, 'learnable', lambda_=1e-3, edge_lr_mult=10.0)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'edge_weights': dict(lr_mult=10.0, decay_mult=0.0)
    }
    assert cfg.custom_hooks == [
        dict(type='EdgeSparsityHook', lambda_=1e-3, interval=10)
    ]
    # the rest of the stock recipe is untouched
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.randomness.seed == 3
    assert 'zero_init_residual' not in cfg.model.backbone


def test_stock_run_has_no_edge_settings(tool, tmp_path):
    cfg = load(tool, tmp_path, 'stock', edge_lr_mult=10.0)
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert 'custom_hooks' not in cfg
    assert cfg.model.backbone.type == 'ResNet'


@pytest.mark.parametrize('name', ['stock', 'residual', 'learnable'])
def test_zero_init_residual_off_reaches_every_backbone(tool, tmp_path, name):
    cfg = load(tool, tmp_path, name, zero_init_residual=False)
    assert cfg.model.backbone.zero_init_residual is False


def test_negative_edge_lr_mult_is_refused(tool):
    with pytest.raises(ValueError, match='edge_lr_mult must be >= 0, got -1'):
        tool.render_config(
            'detection', 'learnable', 0, 'data/toy', edge_lr_mult=-1.0)


def test_epochs_lengthen_training_under_the_recipes_own_schedule(
        tool, tmp_path):
    short = load(tool, tmp_path, 'stock')
    assert (short.train_cfg.max_epochs, short.train_cfg.val_interval,
            short.default_hooks.checkpoint.interval) == (4, 4, 4)
    whole = load(tool, tmp_path, 'learnable', epochs=12)
    assert (whole.train_cfg.max_epochs, whole.train_cfg.val_interval,
            whole.default_hooks.checkpoint.interval) == (12, 12, 12)
    # mmdet's 1x schedule itself is untouched: a 500-iteration warm-up,
    # then decays at epochs 8 and 11
    warmup, steps = whole.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                              0.001, 500)
    assert (steps.type, steps.milestones) == ('MultiStepLR', [8, 11])


@pytest.mark.parametrize('epochs', [0, -3, 2.5])
def test_bad_epochs_are_refused(tool, epochs):
    with pytest.raises(
            ValueError,
            match=f'epochs must be a positive integer, got '
            f'{epochs}'):
        tool.render_config('detection', 'stock', 0, 'data/toy', epochs=epochs)


def test_ablation_configs_keep_their_epochs():
    ablate = load_tool('tools/analysis_tools/ablate_edges.py')
    cfg = ablate.run_config('stock', 0, 'data/digits', epochs=10)
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == 10
    assert cfg.default_hooks.checkpoint.interval == 10
    assert cfg.param_scheduler.milestones == [5, 8]


def test_learned_vs_init_measures_moves_against_a_fresh_init(tool, tmp_path):
    """A checkpoint whose edges and norm weights were moved by known
    amounts gives exactly those means and maximum."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    config = tmp_path / 'learnable.py'
    tool.render_config(
        'detection', 'learnable', 0, 'data/toy',
        heads='small').dump(str(config))
    init_default_scope('mmdet')
    backbone = MODELS.build(Config.fromfile(str(config)).model.backbone)
    backbone.init_weights()
    state = {
        f'backbone.{k}': v.clone()
        for k, v in backbone.state_dict().items()
    }
    state['backbone.layer2.edge_weights'][0, 2] += 0.5  # a skip edge
    state['backbone.layer4.edge_weights'][1, 2] -= 0.25  # a chain edge
    state['backbone.layer3.edge_weights'][2, 0] += 9.0  # not an edge
    state['backbone.layer1.0.bn1.weight'][:4] += 0.1
    torch.save(dict(state_dict=state), tmp_path / 'epoch_4.pth')

    moved = tool.learned_vs_init('mmdet', config, tmp_path)
    num_edges = sum(
        int(m.edge_mask.sum()) for m in backbone.modules()
        if hasattr(m, 'edge_mask'))
    channels = sum(m.weight.numel() for m in backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    assert num_edges == 4 * 3  # four stages of two blocks: 3 edges each
    assert moved['edge_max'] == pytest.approx(0.5)
    assert moved['edge_mean'] == pytest.approx(0.75 / num_edges)
    assert moved['gamma_mean'] == pytest.approx(0.4 / channels)
    assert tool.learned_vs_init('mmdet', config, tmp_path / 'none') is None
