"""The model index (``model-index.yml`` and the configs' metafiles) lists
every config once, with paths that exist and the schedule the config has,
so that ``mim`` and OpenMMLab-style indexes can list them."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]


def indexed_models():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    models, collections = [], {}
    for metafile in index['Import']:
        meta = yaml.safe_load((REPO / metafile).read_text())
        for collection in meta['Collections']:
            collections[collection['Name']] = collection
        models += [(metafile, model) for model in meta['Models']]
    return models, collections


def test_every_config_is_indexed_once_with_existing_paths():
    models, collections = indexed_models()
    configs = [model['Config'] for _, model in models]
    assert len(configs) == len(set(configs))
    # every config but the shared pieces in configs/_base_
    assert sorted(configs) == sorted(
        str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py')
        if '_base_' not in p.parts)
    names = [model['Name'] for _, model in models]
    assert len(names) == len(set(names))
    for metafile, model in models:
        # a model's name is its config's, and it sits beside its metafile
        assert model['Name'] == Path(model['Config']).stem
        assert Path(model['Config']).parent == Path(metafile).parent
        assert model['In Collection'] in collections
    for collection in collections.values():
        assert (REPO / collection['README']).is_file()
        assert 'arxiv.org/abs/2008.04042' in collection['Paper']['URL']


@pytest.mark.parametrize(
    'model',
    [m for _, m in indexed_models()[0] if 'Epochs' in m.get('Metadata', {})],
    ids=lambda m: m['Name'])
def test_indexed_schedule_is_the_configs(model):
    cfg = Config.fromfile(str(REPO / model['Config']))
    assert cfg.train_cfg.max_epochs == model['Metadata']['Epochs']


def test_every_config_folder_has_a_readme_naming_its_configs():
    models, _ = indexed_models()
    for _, model in models:
        config = Path(model['Config'])
        readme = (REPO / config.parent / 'README.md').read_text()
        assert f'({config.name})' in readme, (config, 'not in its README')
