"""Config preparation shared by tools/train.py and tools/test.py."""
import datetime
import gc
import ipaddress
import os
import os.path as osp
import socket
from typing import TYPE_CHECKING, Optional

import torch
from mmengine import fileio
from mmengine.config import Config, DictAction
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

if TYPE_CHECKING:
    from mmengine.runner import Runner


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
    loopback = [
        name for _, name in socket.if_nameindex() if name.startswith('lo')
    ]
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
            type='CPUDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if cfg.launcher == 'pytorch' and not torch.distributed.is_initialized():
        bind_gloo_to_loopback()
        timeout = cfg.env_cfg.dist_cfg.get('timeout', 1800)
        torch.distributed.init_process_group(
            'gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=datetime.timedelta(seconds=timeout))


def _dataset_paths(dataset: dict, backend_args: Optional[dict] = None):
    """(field, path, backend_args) of the files a dataset config reads,
    through dataset wrappers (``dataset``) and concatenations
    (``datasets``)."""
    backend_args = dataset.get('backend_args', backend_args)
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        for field, path, args in _dataset_paths(dataset['dataset'],
                                                backend_args):
            yield f'dataset.{field}', path, args
        return
    if 'datasets' in dataset:  # ConcatDataset
        for k, child in enumerate(dataset['datasets']):
            for field, path, args in _dataset_paths(child, backend_args):
                yield f'datasets.{k}.{field}', path, args
        return
    root = dataset.get('data_root') or ''

    def join(part):
        return fileio.join_path(root, part, backend_args=backend_args) \
            if root else part

    if dataset.get('ann_file'):
        yield 'ann_file', join(dataset['ann_file']), backend_args
    prefix = dataset.get('data_prefix') or {}
    if isinstance(prefix, str):  # mmpretrain's folder datasets
        yield 'data_prefix', join(prefix), backend_args
        return
    for key in ('img', 'img_path', 'seg'):
        if prefix.get(key):
            yield f'data_prefix.{key}', join(prefix[key]), backend_args


def _exists(path: str, backend_args: Optional[dict]) -> bool:
    """Whether ``path`` exists on its storage backend (local disk, or the
    one ``backend_args`` / the path's prefix names); True when the backend
    cannot tell (HTTP has no listing), so a valid remote root is never
    refused."""
    backend = fileio.get_file_backend(path, backend_args=backend_args)
    try:
        return backend.exists(path)
    except (AttributeError, NotImplementedError):
        return True


def check_data_files(cfg: Config, loaders=('train', 'val', 'test')) -> None:
    """Fail before any model is built if a data file or folder is missing,
    naming the config field and the path. Paths are checked through
    mmengine's ``fileio`` with the dataset's ``backend_args``, so remote
    roots (``s3://``, a registered backend) are checked where they live."""
    for split in loaders:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for field, path, backend_args in _dataset_paths(loader['dataset']):
            if not _exists(path, backend_args):
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
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    return cfg


def apply_train_args(cfg: Config, args) -> None:
    """What tools/train.py's ``--amp``, ``--auto-scale-lr`` and ``--resume``
    change in the config, as in mmdet's tools/train.py."""
    if args.amp:
        if not torch.cuda.is_available():
            raise RuntimeError(
                '--amp needs a CUDA device: mmengine\'s AmpOptimWrapper '
                'does not run on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.'
                               'base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume


def add_common_args(parser) -> None:
    """Arguments tools/train.py and tools/test.py share with mmdet's."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
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


def close_distributed(runner: Optional['Runner'] = None) -> None:
    """Shut the process group down once the run is over; call it last.

    mmengine leaves this to the interpreter's exit. A DDP wrapper still alive
    there keeps the group alive past ``destroy_process_group`` (its reducer
    holds it), so the group is torn down while the interpreter exits. With
    gloo (torch 2.13) a rank then aborted after the run had finished
    ("terminate called without an active exception"; 11 of 150 minimal
    two-rank DDP runs), and torchrun failed the whole run. So the runner's
    model is dropped and collected first (the runner cannot run again
    after); the barrier keeps a rank from tearing down while another still
    finishes its hooks.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    if runner is not None:
        runner.model = None
        gc.collect()  # the wrapper sits in reference cycles
    dist.barrier()
    dist.destroy_process_group()
