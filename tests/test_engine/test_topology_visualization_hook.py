"""The topology picture reaches the work dir and the runner's visualizer."""
from pathlib import Path

import pytest
from mmengine.registry import HOOKS
from PIL import Image

from mmtopo.engine import TopologyVisualizationHook
from tests.toy import toy_runner


def test_pictures_every_interval_and_after_training(tmp_path):
    hook = dict(type='TopologyVisualizationHook', interval=4, by_epoch=False)
    runner = toy_runner(
        tmp_path, max_iters=8, hooks=[hook], checkpoint_interval=100)
    runner.train()
    folder = tmp_path / 'topology'
    assert sorted(p.name for p in folder.iterdir()) == [
        'final.png', 'iter_4.png', 'iter_8.png'
    ]
    with Image.open(folder / 'final.png') as image:
        assert image.size[0] > 500 and image.size[1] > 300
    # mmengine's LocalVisBackend saved what the visualizer was given (the
    # runner may reuse a visualizer of the same second: ask it where)
    backend = runner.visualizer.get_backend('LocalVisBackend')
    shown = sorted(
        p.name for p in Path(backend._save_dir).glob('vis_image/topology_*'))
    assert shown == ['topology_4.png', 'topology_8.png']


def test_registered_and_checks_its_interval():
    assert isinstance(
        HOOKS.build(dict(type='TopologyVisualizationHook')),
        TopologyVisualizationHook)
    with pytest.raises(
            ValueError, match='interval must be an integer >= 1, got 0'):
        TopologyVisualizationHook(interval=0)


@pytest.mark.parametrize('kwargs,message', [
    (dict(interval=1.5), 'interval must be an integer >= 1, got 1.5'),
    (dict(by_epoch='yes'), "by_epoch must be True or False, got 'yes'"),
    (dict(out_dir=''), "out_dir must be a folder name (a non-empty string), "
     "got ''"),
    (dict(dpi=0), 'dpi must be an integer >= 1, got 0'),
])
def test_bad_arguments_name_the_field_and_value(kwargs, message):
    with pytest.raises(ValueError) as info:
        TopologyVisualizationHook(**kwargs)
    assert str(info.value) == message
