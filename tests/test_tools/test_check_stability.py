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
    path = tmp_path / f'{name}.py'
    path.write_text(tool.render_config('detection', name, 3, 'data/toy',
                                       heads='small', **recipe))
    return Config.fromfile(str(path))


def test_learnable_run_gets_edge_lr_mult_and_hook(tool, tmp_path):
    cfg = load(tool, tmp_path, 'learnable', lambda_=1e-3, edge_lr_mult=10.0)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'edge_weights': dict(lr_mult=10.0, decay_mult=0.0)}
    assert cfg.custom_hooks == [dict(type='EdgeSparsityHook', lambda_=1e-3,
                                     interval=10)]
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
        tool.render_config('detection', 'learnable', 0, 'data/toy',
                           edge_lr_mult=-1.0)
