"""Config preparation shared by tools/train.py and tools/test.py."""
import datetime
import ipaddress
import os
import os.path as osp
import socket

import torch
from mmengine.config import Config, DictAction
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes: the Runner passes the local
    rank as ``device_ids``, which DDP refuses for a CPU module."""

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


def bind_gloo_to_loopback() -> None:
    """Keep single-host gloo traffic on the loopback interface.

    Gloo binds to the address the host name resolves to. In sandboxes that
    address can be bindable but not reachable from the host itself, and the
    ranks then wait for each other until the process-group timeout. When the
    rendezvous address is a loopback one, every rank is on this host, so the
    loopback interface is always right. A ``GLOO_SOCKET_IFNAME`` set by the
    user is left alone.
    """
    if os.environ.get('GLOO_SOCKET_IFNAME'):
        return
    master = os.environ.get('MASTER_ADDR', '127.0.0.1')
    try:
        if not ipaddress.ip_address(socket.gethostbyname(master)).is_loopback:
            return
    except (OSError, ValueError):
        return
    loopback = [name for _, name in socket.if_nameindex()
                if name.startswith('lo')]
    if loopback:
        os.environ['GLOO_SOCKET_IFNAME'] = loopback[0]


def use_gloo_without_cuda(cfg: Config) -> None:
    """NCCL needs GPUs: on a CPU-only machine distributed runs use gloo.

    mmengine's ``init_dist`` would call ``torch.cuda.set_device`` first, so
    the process group is started here (the Runner then reuses it), and the
    model is wrapped for CPU.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='CPUDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        bind_gloo_to_loopback()
        timeout = cfg.env_cfg.dist_cfg.get('timeout', 1800)
        torch.distributed.init_process_group(
            'gloo', rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=datetime.timedelta(seconds=timeout))


def _dataset_paths(dataset: dict):
    """(field, path) of the files a dataset config reads."""
    if 'dataset' in dataset:  # wrappers: RepeatDataset, ClassBalanced...
        yield from _dataset_paths(dataset['dataset'])
        return
    root = dataset.get('data_root') or ''
    if dataset.get('ann_file'):
        yield 'ann_file', osp.join(root, dataset['ann_file'])
    prefix = dataset.get('data_prefix') or {}
    if isinstance(prefix, str):  # mmpretrain's folder datasets
        yield 'data_prefix', osp.join(root, prefix)
        return
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


def load_config(args) -> Config:
    """The config as tools/train.py and tools/test.py see it: the file, then
    ``--cfg-options``, the launcher and the work dir."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def add_common_args(parser) -> None:
    """Arguments tools/train.py and tools/test.py share with mmdet's."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def build_runner(cfg: Config, mode: str = 'train'):
    """Check the data, set up CPU distribution if needed, build the runner
    (``runner_type`` respected, as mmdet's and mmpretrain's tools do)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    use_gloo_without_cuda(cfg)
    check_data_files(cfg, ('train', 'val') if mode == 'train' else ('test', ))
    return (Runner.from_cfg(cfg)
            if 'runner_type' not in cfg else RUNNERS.build(cfg))
