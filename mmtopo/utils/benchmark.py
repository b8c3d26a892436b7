"""Timing helpers shared by the benchmark tools: interleaved rounds, ratios
with their spread, op counts, and a line naming what was measured on
what."""
import argparse
import contextlib
import platform
import re
import time
from collections import Counter
from statistics import median, quantiles
from typing import Callable, Dict, List, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

AMP_DTYPES = dict(bf16=torch.bfloat16, fp16=torch.float16)


def autocast(device: str, amp: Optional[str]):
    """``torch.autocast`` for ``amp`` (``'bf16'``, ``'fp16'``), or nothing."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=AMP_DTYPES[amp])


def timed(fn: Callable[[], None], device: str) -> float:
    """Seconds ``fn()`` takes, with the device's queue drained on both
    sides."""
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_times(steps: Dict[str, Callable[[], None]], rounds: int,
                      warmup: int, device: str) -> Dict[str, List[float]]:
    """Run every step once per round, in turn, after ``warmup`` untimed
    rounds (which also compile), so that machine noise hits all alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(timed(step, device))
    return times


class _OpCounter(TorchDispatchMode):

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], None]) -> Counter:
    """The ATen ops, views excluded, that ``fn()`` dispatches, by name.

    On a GPU in eager mode nearly every such op is a kernel launch with
    its host-side cost, so the count is a machine-independent proxy for
    the launch-bound part of a step; it is deterministic, unlike a time.
    """
    with _OpCounter() as counter:
        fn()
    return counter.ops


def ratio_stats(times: List[float], base: List[float]) -> dict:
    """The median time, and the median and quartiles of the ratios
    ``times[r] / base[r]`` of the same rounds ``r``. The quartiles
    interpolate between the ratios measured (``inclusive``), so a few
    rounds never give a quartile outside them."""
    ratios = [t / b for t, b in zip(times, base)]
    q1, _, q3 = (
        quantiles(ratios, n=4, method='inclusive')
        if len(ratios) > 1 else ratios * 3)
    return dict(time=median(times), ratio=median(ratios), q1=q1, q3=q3)


def format_time(stats: dict) -> str:
    return (f"{stats['time'] * 1e3:.1f} ms ({stats['ratio']:.3f}x, "
            f"{stats['q1']:.3f}-{stats['q3']:.3f})")


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            found = re.search(r'model name\s*:\s*(.*)', f.read())
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.machine()


def describe_machine(device: str) -> str:
    """torch version and the device: GPU name, or CPU model, threads and
    the ATen kernels in use."""
    if device == 'cuda':
        where = f'GPU {torch.cuda.get_device_name()}'
    else:
        where = (f'CPU {cpu_name()}, {torch.get_num_threads()} threads, '
                 f'ATen {torch.backends.cpu.get_cpu_capability()}')
    return f'torch {torch.__version__}, {where}'


def describe_settings(compile: bool, channels_last: bool,
                      amp: Optional[str]) -> str:
    return ', '.join([
        'compiled' if compile else 'eager',
        'channels_last' if channels_last else 'NCHW',
        f'autocast {amp}' if amp else 'float32'
    ])


def add_timing_args(parser: argparse.ArgumentParser, iters: int = 7) -> None:
    """The options both benchmark tools take: rounds, threads, device and
    the settings users train with."""
    parser.add_argument(
        '--iters', type=int, default=iters, help='timed rounds')
    parser.add_argument(
        '--warmup',
        type=int,
        default=2,
        help='untimed rounds first (they also compile)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help="CPU threads (default: torch's)")
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile (default options)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='models and inputs in channels_last')
    parser.add_argument(
        '--amp',
        choices=sorted(AMP_DTYPES),
        help='mixed precision of this dtype')
    parser.add_argument('--json', help='also write the results here')


def check_timing_args(parser: argparse.ArgumentParser,
                      args: argparse.Namespace) -> None:
    """Fail through ``parser`` on a device that is not there or no rounds;
    apply ``--threads``."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.iters < 1 or args.warmup < 1:
        parser.error(f'--iters and --warmup must be >= 1, got '
                     f'{args.iters} and {args.warmup}')
    if args.threads:
        torch.set_num_threads(args.threads)
