"""Helpers shared by the tests."""
import copy
import datetime
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

REPO = Path(__file__).resolve().parents[1]


def as_if_compiling():
    """A patch under which mmtopo's ``is_compiling`` says True, so a forward
    takes the path ``torch.compile`` traces, run eagerly. It patches the
    check mmtopo asks: ``torch.compiler.is_compiling`` from torch 2.3,
    ``torch._dynamo.is_compiling`` before."""
    from unittest import mock
    target = ('torch.compiler.is_compiling' if hasattr(
        torch.compiler, 'is_compiling') else 'torch._dynamo.is_compiling')
    return mock.patch(target, return_value=True)


def check_norm_state(modules, train_state: bool) -> bool:
    """True if every BatchNorm among ``modules`` is in ``train_state``."""
    return all(m.training == train_state for mod in modules
               for m in mod.modules() if isinstance(m, _BatchNorm))


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Load ``src``'s state dict into ``dst``; only edge tensors may be
    missing, nothing may be unexpected."""
    result = dst.load_state_dict(src.state_dict(), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all('edge_' in k for k in result.missing_keys), result.missing_keys


def check_outputs_match(stock: torch.nn.Module,
                        topo: torch.nn.Module,
                        x: torch.Tensor,
                        atol: float = 1e-5) -> None:
    """With ``stock``'s state dict and non-trivial norm statistics, ``topo``
    returns what ``stock`` returns, in train and in eval mode."""
    copy_weights(stock, topo)
    randomize_norms(stock)
    randomize_norms(topo)
    for mode in (True, False):
        stock.train(mode)
        topo.train(mode)
        outs_stock, outs_topo = stock(x), topo(x)
        assert len(outs_stock) == len(outs_topo) == len(stock.out_indices)
        for a, b in zip(outs_stock, outs_topo):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, atol=atol, rtol=1e-5)


def check_same_seed_init(make_stock, make_topo, seed: int = 0):
    """Built and ``init_weights()``-ed from the same seed, the topology
    backbone holds exactly the stock one's tensors, under the same names,
    plus its edge tensors. Returns the two, initialised."""
    torch.manual_seed(seed)
    stock = make_stock()
    stock.init_weights()
    torch.manual_seed(seed)
    topo = make_topo()
    topo.init_weights()
    theirs = stock.state_dict()
    ours = {k: v for k, v in topo.state_dict().items() if 'edge_' not in k}
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        assert torch.equal(ours[name], value), name
    return stock, topo


def check_stock_checkpoint_loads(stock: torch.nn.Module,
                                 make_topo,
                                 tmp_path,
                                 key_prefix: str = '') -> torch.nn.Module:
    """A stock checkpoint loads through ``init_cfg=Pretrained``, every
    tensor lands, and a direct load misses exactly the edge tensors of each
    stage. ``make_topo(init_cfg)`` builds the topology backbone; the
    checkpoint's keys start with ``key_prefix`` (``'backbone.'``: a
    detector's checkpoint)."""
    path = tmp_path / 'stock.pth'
    torch.save(
        dict(state_dict={
            key_prefix + k: v
            for k, v in stock.state_dict().items()
        }), path)
    topo = make_topo(dict(type='Pretrained', checkpoint=str(path)))
    topo.init_weights()
    for name, value in stock.state_dict().items():
        assert torch.equal(topo.state_dict()[name], value), name
    result = topo.load_state_dict(stock.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert sorted(result.missing_keys) == sorted(f'{name}.{k}'
                                                 for name in topo.stage_names
                                                 for k in ('edge_mask',
                                                           'edge_weights'))
    return topo


def check_with_cp_gradients(plain: torch.nn.Module, cp: torch.nn.Module,
                            x: torch.Tensor) -> None:
    """``cp`` (built with ``with_cp=True``, every block checkpointed) gives
    ``plain``'s gradients for every parameter and for the input. Both run
    in train mode from the same seed (the same drop-path draws); the loss
    is the outputs' sum of squares (a plain sum of a normalised output has
    no gradient)."""
    cp.load_state_dict(plain.state_dict())
    assert all(b.with_cp for s in cp.stage_graphs for b in s)
    x = x.clone().requires_grad_()
    grads = []
    for model in (plain, cp):
        model.train()
        model.zero_grad()
        x.grad = None
        torch.manual_seed(2)
        sum(o.pow(2).sum() for o in model(x)).backward()
        grads.append({
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        })
        grads[-1]['input'] = x.grad.clone()
    assert sorted(grads[0]) == sorted(grads[1])
    for name, g in grads[0].items():
        torch.testing.assert_close(
            grads[1][name],
            g,
            rtol=1e-4,
            atol=1e-5 * float(g.abs().max()),
            msg=name)


def randomize_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so that eval-mode
    comparisons exercise them."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def repo_configs(scope: str) -> list:
    """The repository's configs whose ``default_scope`` is ``scope``
    (``'mmdet'``: detection, ``'mmpretrain'``: classification), but the
    shared pieces in configs/_base_."""
    from mmengine.config import Config
    return [
        path for path in sorted((REPO / 'configs').rglob('*.py'))
        if '_base_' not in path.parts
        and Config.fromfile(str(path)).get('default_scope') == scope
    ]


def check_edge_regularisation(cfg, model) -> None:
    """A config with learnable edges carries the sparsity hook and its
    optimizer puts every edge in a group without weight decay; one without
    learnable edges (a fixed wiring, or a stock backbone: a reference) has
    no hook."""
    from mmengine.optim import build_optim_wrapper
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    stages = getattr(model.backbone, 'stage_graphs', [])
    learnable = [s.edge_weights for s in stages if s.learnable]
    assert bool(learnable) == ('EdgeSparsityHook' in hooks)
    # the optimizer holds the edges that train (not frozen_stages')
    edges = {id(edge) for edge in learnable if edge.requires_grad}
    if not edges:
        return
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if optim_cfg.get('type') == 'AmpOptimWrapper':
        # needs a GPU to build; the parameter groups are the constructor's
        optim_cfg.type = 'OptimWrapper'
        optim_cfg.pop('loss_scale', None)
    groups = build_optim_wrapper(model, optim_cfg).optimizer.param_groups
    decay = {
        id(p): group['weight_decay']
        for group in groups
        for p in group['params'] if id(p) in edges
    }
    assert decay == {edge: 0 for edge in edges}


def run_tool(args,
             timeout: float = 600,
             check: bool = False,
             **kwargs) -> subprocess.CompletedProcess:
    """Run a command from the repository root in a process group of its own.

    A run that outlives ``timeout`` is killed with everything it started
    (torchrun's workers included) and the test fails with its output, so a
    hung rank costs minutes, not the whole CI budget. With ``check``, a
    non-zero exit fails the test with the output's tail.
    """
    proc = subprocess.Popen(
        args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f'{args} still running after {timeout}s\n'
                    f'{out[-3000:]}\n{err[-5000:]}')
    if check and proc.returncode != 0:
        pytest.fail(f'{args} exited with {proc.returncode}\n'
                    f'{out[-3000:]}\n{err[-5000:]}')
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def spawn_ranks(fn,
                nprocs: int,
                args=(),
                timeout: float = 300,
                outputs=(),
                grace: float = 30) -> None:
    """``torch.multiprocessing.spawn`` with a deadline: ranks still running
    after ``timeout`` seconds are killed and the test fails.

    ``outputs``: files the ranks write when their work is done. Once all
    exist, ranks get ``grace`` seconds to exit and are then killed: gloo's
    process-group teardown can hang on a loaded machine after the work has
    finished, and what the test checks is in the files.
    """
    context = torch.multiprocessing.start_processes(
        fn, args=args, nprocs=nprocs, join=False, start_method='spawn')
    deadline = time.monotonic() + timeout
    finished = None
    try:
        while not context.join(timeout=1):
            now = time.monotonic()
            if outputs and finished is None and all(
                    os.path.exists(p) for p in outputs):
                finished = now
            if finished is not None and now > finished + grace:
                return  # work done; stuck in teardown (killed below)
            if now > deadline:
                pytest.fail(f'{nprocs} ranks still running after {timeout}s')
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()


def load_tool(relative: str):
    """A script under ``tools/`` imported as a module, to call its
    ``main(argv)`` in the test process."""
    import importlib.util
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def init_gloo(rank: int, world_size: int, port: int) -> None:
    """Join a gloo process group of ``world_size`` ranks on the loopback
    (in a rank spawned by :func:`spawn_ranks`)."""
    from mmtopo.utils.launch import bind_gloo_to_loopback
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    bind_gloo_to_loopback()
    torch.distributed.init_process_group(
        'gloo',
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=120))
