"""Single-host gloo runs bind to the loopback interface."""
import os
import socket

import pytest

from mmtopo.utils.launch import bind_gloo_to_loopback

LOOPBACK = next(name for _, name in socket.if_nameindex()
                if name.startswith('lo'))


@pytest.mark.parametrize('master', ['127.0.0.1', 'localhost', None])
def test_single_host_binds_to_loopback(monkeypatch, master):
    monkeypatch.delenv('GLOO_SOCKET_IFNAME', raising=False)
    if master is None:
        monkeypatch.delenv('MASTER_ADDR', raising=False)
    else:
        monkeypatch.setenv('MASTER_ADDR', master)
    bind_gloo_to_loopback()
    assert os.environ['GLOO_SOCKET_IFNAME'] == LOOPBACK


def test_other_hosts_and_user_choice_are_left_alone(monkeypatch):
    monkeypatch.delenv('GLOO_SOCKET_IFNAME', raising=False)
    monkeypatch.setenv('MASTER_ADDR', '192.0.2.10')  # TEST-NET: another host
    bind_gloo_to_loopback()
    assert 'GLOO_SOCKET_IFNAME' not in os.environ

    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('GLOO_SOCKET_IFNAME', 'eth7')
    bind_gloo_to_loopback()
    assert os.environ['GLOO_SOCKET_IFNAME'] == 'eth7'


# --- check_data_files ------------------------------------------------------


def _cfg(**loaders):
    from mmengine.config import Config
    return Config({
        f'{k}_dataloader': dict(dataset=v)
        for k, v in loaders.items()
    })


def test_missing_local_files_fail_naming_the_field(tmp_path):
    from mmtopo.utils.launch import check_data_files
    (tmp_path / 'ann.json').write_text('{}')
    (tmp_path / 'img').mkdir()
    good = dict(
        data_root=str(tmp_path),
        ann_file='ann.json',
        data_prefix=dict(img='img/'))
    check_data_files(_cfg(train=good, val=good, test=good))
    cases = [
        (dict(val=dict(good, ann_file='missing.json')),
         "val_dataloader.dataset.ann_file: '{}/missing.json' does not "
         'exist'),
        (dict(test=dict(good, data_prefix=dict(img='nowhere/'))),
         "test_dataloader.dataset.data_prefix.img: '{}/nowhere/' does not "
         'exist'),
        (dict(
            train=dict(
                type='RepeatDataset',
                times=2,
                dataset=dict(good, ann_file='gone.json'))),
         "train_dataloader.dataset.dataset.ann_file: '{}/gone.json'"),
        (dict(
            train=dict(
                type='ConcatDataset',
                datasets=[good, dict(good, data_prefix='absent')])),
         "train_dataloader.dataset.datasets.1.data_prefix: '{}/absent'"),
    ]
    for loaders, words in cases:
        with pytest.raises(FileNotFoundError) as info:
            check_data_files(_cfg(**loaders))
        assert words.format(tmp_path) in str(info.value)


def test_remote_roots_are_checked_on_their_own_backend(tmp_path):
    """A data root of a registered storage backend (as s3:// is, through
    backend_args) is asked whether the file exists; it is not looked up on
    the local disk, where it never is."""
    from mmengine import fileio
    from mmengine.fileio.backends import LocalBackend

    from mmtopo.utils.launch import check_data_files

    class MemoryBackend(LocalBackend):
        files = {'mem://bucket/coco/ann.json', 'mem://bucket/coco/img'}

        def exists(self, filepath):
            return str(filepath) in self.files

        def join_path(self, filepath, *filepaths):
            return '/'.join([str(filepath).rstrip('/'), *filepaths])

    fileio.register_backend(
        'mmtopo_test_memory', MemoryBackend, force=True, prefixes='mem')
    dataset = dict(
        data_root='mem://bucket/coco',
        ann_file='ann.json',
        data_prefix=dict(img='img'),
        backend_args=dict(backend='mmtopo_test_memory'))
    check_data_files(_cfg(train=dataset))  # os.path.exists would refuse it
    with pytest.raises(
            FileNotFoundError,
            match="train_dataloader.dataset.ann_file: "
            "'mem://bucket/coco/other.json' does not exist"):
        check_data_files(_cfg(train=dict(dataset, ann_file='other.json')))


# --- tools/train.py's arguments --------------------------------------------


def _train_args(**kwargs):
    import argparse
    return argparse.Namespace(
        **dict(dict(amp=False, auto_scale_lr=False, resume=None), **kwargs))


def test_amp_switches_to_the_dynamic_amp_wrapper(monkeypatch):
    from mmengine.config import Config

    from mmtopo.utils.launch import apply_train_args
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    with pytest.raises(RuntimeError, match='--amp needs a CUDA device'):
        apply_train_args(cfg, _train_args(amp=True))
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    monkeypatch.setattr('torch.cuda.is_available', lambda: True)
    apply_train_args(cfg, _train_args(amp=True))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_auto_scale_lr_and_resume():
    from mmengine.config import Config

    from mmtopo.utils.launch import apply_train_args
    cfg = Config(
        dict(
            auto_scale_lr=dict(enable=False, base_batch_size=16),
            load_from='init.pth'))
    apply_train_args(cfg, _train_args(auto_scale_lr=True, resume='auto'))
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None
    apply_train_args(cfg, _train_args(resume='work/epoch_3.pth'))
    assert cfg.resume is True and cfg.load_from == 'work/epoch_3.pth'
    with pytest.raises(RuntimeError, match='auto_scale_lr.base_batch_size'):
        apply_train_args(
            Config(dict(auto_scale_lr=dict(enable=False))),
            _train_args(auto_scale_lr=True))


def test_close_distributed_destroys_the_process_group(tmp_path):
    import torch.distributed as dist

    from mmtopo.utils.launch import close_distributed
    close_distributed()  # no group: nothing to do, no error
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    assert dist.is_initialized()
    close_distributed()
    assert not dist.is_initialized()


def test_close_distributed_frees_the_ddp_wrapper_before_the_group(
        tmp_path, monkeypatch):
    # a DDP reducer alive at interpreter exit keeps the group alive until
    # then, where gloo's teardown aborted ranks; the wrapper must be gone
    # (collected, not only unreferenced) when the group is destroyed
    import types
    import weakref

    import torch
    import torch.distributed as dist

    from mmtopo.utils.launch import (CPUDistributedDataParallel,
                                     close_distributed)
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    runner = types.SimpleNamespace(
        model=CPUDistributedDataParallel(torch.nn.Linear(4, 2)))
    runner.model.self_reference = runner.model  # a cycle, as DDP's hooks
    wrapper = weakref.ref(runner.model)
    alive_at_destroy = []
    destroy = dist.destroy_process_group

    def recording_destroy(*args, **kwargs):
        alive_at_destroy.append(wrapper() is not None)
        destroy(*args, **kwargs)

    monkeypatch.setattr(dist, 'destroy_process_group', recording_destroy)
    close_distributed(runner)
    assert alive_at_destroy == [False]
    assert runner.model is None
    assert not dist.is_initialized()
