"""Config preparation shared by tools/train.py and tools/test.py."""
import os.path as osp

import torch
from mmengine.config import Config


def use_gloo_without_cuda(cfg: Config) -> None:
    """NCCL needs GPUs: on a CPU-only machine distributed runs use gloo."""
    if cfg.get('launcher', 'none') != 'none' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg.backend = 'gloo'


def _dataset_paths(dataset: dict):
    """(field, path) of the files a dataset config reads."""
    if 'dataset' in dataset:  # wrappers: RepeatDataset, ClassBalanced...
        yield from _dataset_paths(dataset['dataset'])
        return
    root = dataset.get('data_root') or ''
    if dataset.get('ann_file'):
        yield 'ann_file', osp.join(root, dataset['ann_file'])
    prefix = dataset.get('data_prefix') or {}
    for key in ('img', 'img_path', 'seg'):
        if prefix.get(key):
            yield f'data_prefix.{key}', osp.join(root, prefix[key])


def check_data_files(cfg: Config, loaders=('train', 'val', 'test')) -> None:
    """Fail before any model is built if a data file or folder is missing,
    naming the config field and the path."""
    for split in loaders:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for field, path in _dataset_paths(loader['dataset']):
            if not osp.exists(path):
                raise FileNotFoundError(
                    f'{split}_dataloader.dataset.{field}: {path!r} does not '
                    'exist')


def prepare_config(cfg: Config, mode: str = 'train') -> None:
    use_gloo_without_cuda(cfg)
    check_data_files(cfg, ('train', 'val') if mode == 'train' else ('test', ))
