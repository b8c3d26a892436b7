"""Speed, memory, parameters and FLOPs of topology backbones against the
stock mmdet backbone of the same architecture, measured in one run; prints
ratios.

    python tools/analysis_tools/benchmark_backbone.py --depth 50 \
        --topology learnable learnable_uniform complete --batch-size 8
    # the other families: TopoRegNet, TopoMobileNetV2, and the modern
    # detection backbones at RTMDet-l's, YOLOX-s's, Swin-T's, ConvNeXt-T's size
    ... --backbone regnet --arch regnetx_3.2gf
    ... --backbone mobilenet_v2
    ... --backbone cspnext | csp_darknet | swin | convnext
    # the settings users train with, alone or together
    ... --compile --channels-last --amp bf16 [--device cuda]

Times: every model runs the same steps in turn (interleaved, so machine
noise hits all alike), after warm-up steps (which also compile). A train
step is forward, a loss over all outputs and backward; inference is an
eval-mode forward without gradients. Each ratio is the median over steps of
``time(model) / time(stock)`` in the same round, with the 25th-75th
percentile range of those ratios as the spread. The timing process runs
with the environment it was started with (no allocator tuning).

Ops: the ATen ops (views excluded) one train step dispatches, counted
after the warm-up: on a GPU in eager mode about one kernel launch each,
so the launch-bound part of a step (not counted under ``--compile``).
They are counted on the path a GPU takes, the fan-outs' gradients stacked
(``stacks_gradients``), on CPU too, where the timed steps take the other;
``--fan-out stacked|unstacked`` makes every measurement take one path (e.g.
``--fan-out stacked`` times the GPU's path on a CPU; even at
``--batch-size 2 --img-size 64`` such a step is more arithmetic than
dispatch, so it does not stand in for a GPU's).
Host time (CUDA only): the CPU time the process spends in one train step,
the part the GPU waits for when a step is launch-bound.

Peak memory: the growth over one train step after a warm-up step. On CPU,
of the resident set, each model in a fresh process that returns freed
memory to the system at once (``MALLOC_MMAP_THRESHOLD_``, set in that
process only); on CUDA, of the caching allocator's peak, in this process.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from statistics import median

import torch
from mmdet.models.backbones import (CSPDarknet, CSPNeXt, MobileNetV2, RegNet,
                                    ResNet, SwinTransformer)
from mmengine.analysis import parameter_count
from mmpretrain.models.backbones import ConvNeXt

import mmtopo  # noqa: F401
from mmtopo.models import (TopoConvNeXt, TopoCSPDarknet, TopoCSPNeXt,
                           TopoMobileNetV2, TopoRegNet, TopoResNet,
                           TopoSwinTransformer)
from mmtopo.models.layers import stacked_fan_out
from mmtopo.utils.benchmark import (add_timing_args, autocast,
                                    check_timing_args, count_ops,
                                    describe_machine, describe_settings,
                                    format_time, interleaved_times,
                                    ratio_stats)
from mmtopo.utils.complexity import count_flops

TOPOLOGIES = dict(
    residual=dict(type='residual'),
    learnable=dict(type='learnable', init='residual'),
    learnable_uniform=dict(type='learnable', init='uniform'),
    dynamic=dict(type='dynamic', init='residual'),
    dynamic_uniform=dict(type='dynamic', init='uniform'),
    complete=dict(type='complete'),
    random=dict(type='random', graph='ws', k=2, p=0.5, seed=0),
)

# --fan-out: the path FanOut's backward takes (stacked_fan_out's argument)
FAN_OUT = dict(device=None, stacked=True, unstacked=False)
FAN_OUT_NAMES = dict(
    device='stacked off the CPU', stacked='stacked', unstacked='not stacked')


@dataclass(frozen=True)
class Family:
    """A stock backbone and its topology class, built alike: with
    ``kwargs`` and the command-line ``options`` named; ``name`` is
    formatted with the options. Classes with norm layers they can freeze
    train them here (``norm_eval=False``, as from scratch), so a train step
    is the same work but the wiring."""
    stock: type
    topo: type
    name: str
    kwargs: dict = field(default_factory=dict)
    options: tuple = ()


FAMILIES = dict(
    resnet=Family(ResNet, TopoResNet, 'ResNet-{depth}', dict(norm_eval=False),
                  ('depth', )),
    regnet=Family(RegNet, TopoRegNet, 'RegNet {arch}', dict(norm_eval=False),
                  ('arch', )),
    mobilenet_v2=Family(MobileNetV2, TopoMobileNetV2, 'MobileNetV2',
                        dict(norm_eval=False)),
    cspnext=Family(CSPNeXt, TopoCSPNeXt, "CSPNeXt (RTMDet-l's)",
                   dict(norm_eval=False)),
    csp_darknet=Family(
        CSPDarknet, TopoCSPDarknet, "CSPDarknet (YOLOX-s's)",
        dict(deepen_factor=0.33, widen_factor=0.5, norm_eval=False)),
    swin=Family(SwinTransformer, TopoSwinTransformer, 'Swin-T'),
    convnext=Family(
        ConvNeXt, TopoConvNeXt, 'ConvNeXt-T (mmpretrain)',
        dict(
            arch='tiny', out_indices=(0, 1, 2, 3),
            gap_before_final_norm=False)),
)


def build(name: str, args) -> torch.nn.Module:
    """``'stock'``: the stock backbone; else its topology class wired as
    ``TOPOLOGIES[name]``."""
    family = FAMILIES[args.backbone]
    kwargs = dict(family.kwargs,
                  **{k: getattr(args, k)
                     for k in family.options})
    if name == 'stock':
        return family.stock(**kwargs)
    return family.topo(topology=TOPOLOGIES[name], **kwargs)


def describe_backbone(args) -> str:
    return FAMILIES[args.backbone].name.format(**vars(args))


class BenchModel:
    """One model as the benchmark runs it: layout, device, autocast and
    compilation applied as a user would."""

    def __init__(self, name: str, args):
        torch.manual_seed(0)
        self.model = build(name, args).to(args.device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = (
            torch.compile(self.model) if args.compile else self.model)
        self.device, self.amp = args.device, args.amp

    def train_step(self, x: torch.Tensor) -> None:
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            outs = self.forward(x)
        sum(o.float().mean() for o in outs).backward()

    def infer(self, x: torch.Tensor) -> None:
        self.model.eval()
        with torch.no_grad(), autocast(self.device, self.amp):
            self.forward(x)


def make_input(args) -> torch.Tensor:
    x = torch.randn(
        args.batch_size, 3, args.img_size, args.img_size, device=args.device)
    if args.channels_last:
        x = x.to(memory_format=torch.channels_last)
    return x


def rss_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in KiB."""
    with open('/proc/self/status') as f:
        return int(re.search(rf'{field}:\s+(\d+)', f.read()).group(1))


def peak_memory_here(name: str, args) -> int:
    """Peak memory of one train step of ``name``, after a warm-up step
    (which also compiles) whose peak is then forgotten."""
    runner = BenchModel(name, args)
    x = make_input(args)
    runner.train_step(x)
    runner.model.zero_grad(set_to_none=True)
    if args.device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        runner.train_step(x)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset the peak resident set (VmHWM) to the current
    before = rss_kib('VmRSS')
    runner.train_step(x)
    return (rss_kib('VmHWM') - before) * 1024


def peak_memory(name: str, args) -> int:
    if args.device == 'cuda':
        return peak_memory_here(name, args)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    argv = [
        '--backbone', args.backbone, '--depth',
        str(args.depth), '--arch', args.arch, '--batch-size',
        str(args.batch_size), '--img-size',
        str(args.img_size), '--memory-of', name
    ]
    argv += ['--compile'] * args.compile
    argv += ['--channels-last'] * args.channels_last
    argv += ['--amp', args.amp] if args.amp else []
    argv += ['--threads', str(args.threads)] if args.threads else []
    argv += ['--fan-out', args.fan_out]
    out = subprocess.run([sys.executable, __file__, *argv],
                         capture_output=True,
                         text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f'memory run of {name} failed:\n{out.stderr}')
    return json.loads(out.stdout.strip().splitlines()[-1])['peak']


def describe_setup(args) -> str:
    settings = describe_settings(args.compile, args.channels_last, args.amp)
    return (f'{describe_machine(args.device)}; {describe_backbone(args)}, '
            f'batch {args.batch_size}, {args.img_size}x{args.img_size}, '
            f'{settings}; fan-out gradients {FAN_OUT_NAMES[args.fan_out]}; '
            f'{args.warmup} warm-up + {args.iters} interleaved rounds')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--backbone', default='resnet', choices=sorted(FAMILIES))
    parser.add_argument('--depth', type=int, default=50, help='of a ResNet')
    parser.add_argument(
        '--arch',
        default='regnetx_3.2gf',
        choices=sorted(RegNet.arch_settings),
        help='of a RegNet')
    parser.add_argument(
        '--topology',
        nargs='+',
        default=['learnable'],
        choices=sorted(TOPOLOGIES))
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    add_timing_args(parser)
    parser.add_argument(
        '--fan-out',
        default='device',
        choices=sorted(FAN_OUT),
        help="the fan-outs' backward path: by device "
        '(stacked off the CPU), or the one given everywhere')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the peak-memory runs')
    parser.add_argument('--memory-of', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_timing_args(parser, args)
    return args


def host_time(runner: 'BenchModel', x: torch.Tensor, rounds: int) -> float:
    """Median CPU seconds of this process in one train step (CUDA)."""
    times = []
    for _ in range(rounds):
        torch.cuda.synchronize()
        start = time.process_time()
        runner.train_step(x)
        times.append(time.process_time() - start)
        torch.cuda.synchronize()
    return median(times)


def format_row(name: str, r: dict) -> str:
    memory = ('-' if r['peak_mem'] is None else
              f"{r['peak_mem'] / 2**20:.0f} MiB ({r['mem_ratio']:.3f}x)")
    ops = '-' if r['ops'] is None else f"{r['ops']} ({r['ops_ratio']:.3f}x)"
    host = ('' if r['host'] is None else
            f" {r['host'] * 1e3:.1f} ms ({r['host_ratio']:.3f}x) |")
    return (f"| {name} | {format_time(r['train'])} | "
            f"{format_time(r['infer'])} | {ops} |{host} {memory} | "
            f"{r['params'] / 1e6:.3f} M ({r['params_ratio']:.4f}x) | "
            f"{r['flops'] / 1e9:.3f} G ({r['flops_ratio']:.4f}x) |")


def main(argv=None):
    args = parse_args(argv)
    with stacked_fan_out(FAN_OUT[args.fan_out]):
        run(args)


def run(args):
    if args.memory_of:
        print(json.dumps(dict(peak=peak_memory_here(args.memory_of, args))))
        return
    names = ['stock', *args.topology]
    peaks = {
        n: None if args.no_memory else peak_memory(n, args)
        for n in names
    }
    runners = {name: BenchModel(name, args) for name in names}
    x = make_input(args)
    steps = {}
    for name, r in runners.items():
        steps[(name, 'train')] = lambda r=r: r.train_step(x)
        steps[(name, 'infer')] = lambda r=r: r.infer(x)
    times = interleaved_times(steps, args.iters, args.warmup, args.device)
    # by device, ops are counted on the GPU's path: they stand for launches
    with stacked_fan_out(args.fan_out != 'unstacked'):
        ops = {
            name:
            None if args.compile else sum(
                count_ops(lambda r=r: r.train_step(x)).values())
            for name, r in runners.items()
        }
    host = {
        name: host_time(r, x, args.iters) if args.device == 'cuda' else None
        for name, r in runners.items()
    }
    flops_x = torch.randn(1, 3, args.img_size, args.img_size)
    results = {}
    for name in names:
        cpu_model = build(name, args)
        results[name] = dict(
            train=ratio_stats(times[name, 'train'], times['stock', 'train']),
            infer=ratio_stats(times[name, 'infer'], times['stock', 'infer']),
            peak_mem=peaks[name],
            ops=ops[name],
            host=host[name],
            params=parameter_count(cpu_model)[''],
            flops=count_flops(cpu_model, (flops_x, )))
    base = results['stock']
    for r in results.values():
        r['params_ratio'] = r['params'] / base['params']
        r['flops_ratio'] = r['flops'] / base['flops']
        r['mem_ratio'] = (None if r['peak_mem'] is None else r['peak_mem'] /
                          base['peak_mem'])
        r['ops_ratio'] = None if r['ops'] is None else r['ops'] / base['ops']
        r['host_ratio'] = (None if r['host'] is None else r['host'] /
                           base['host'])
    print(describe_setup(args))
    print(f'ratios against the stock {describe_backbone(args)}: median over '
          'rounds (25th-75th percentile); memory: ' +
          ('not measured' if args.no_memory else
           'CUDA allocator peak over one step' if args.device == 'cuda' else
           'resident-set growth over one step, one process per model'))
    host_column = ' host CPU per train step |' if args.device == 'cuda' else ''
    print('| model | train step | inference (eval) | ops per train step |'
          f'{host_column} peak memory | params | FLOPs |')
    print('|' + ' --- |' * (7 + bool(host_column)))
    for name, r in results.items():
        print(format_row(name, r))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    setup=describe_setup(args),
                    args=vars(args),
                    results=results),
                f,
                indent=2)


if __name__ == '__main__':
    main()
