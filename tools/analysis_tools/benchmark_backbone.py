"""Speed, memory, parameters and FLOPs of a TopoResNet against mmdet's ResNet
of the same depth, measured in the same run; prints ratios.

    python tools/analysis_tools/benchmark_backbone.py --depth 50 \
        --topology learnable --batch-size 8 --img-size 224

Times are medians over interleaved runs of both models (so machine noise
hits both alike). Peak memory is the growth of the resident set during one
forward+backward, each model in a fresh process.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from statistics import median

# Large allocations always mmapped, so freed memory really leaves the process
# and the resident-set peak measures what one step needs.
os.environ.setdefault('MALLOC_MMAP_THRESHOLD_', '65536')

import torch  # noqa: E402
from mmdet.models.backbones import ResNet  # noqa: E402
from mmengine.analysis import parameter_count  # noqa: E402

import mmtopo  # noqa: E402,F401
from mmtopo.models import TopoResNet  # noqa: E402
from mmtopo.utils.complexity import count_flops  # noqa: E402

TOPOLOGIES = dict(
    residual=dict(type='residual'),
    learnable=dict(type='learnable', init='residual'),
    learnable_uniform=dict(type='learnable', init='uniform'),
    complete=dict(type='complete'),
    random=dict(type='random', graph='ws', k=2, p=0.5, seed=0),
)


def build(name: str, depth: int) -> torch.nn.Module:
    if name == 'stock':
        return ResNet(depth=depth, norm_eval=False)
    return TopoResNet(depth=depth, topology=TOPOLOGIES[name])


def step(model, x):
    outs = model(x)
    sum(o.mean() for o in outs).backward()


def time_models(models, x, iters, warmup):
    times = {name: {'train': [], 'infer': []} for name in models}
    for _ in range(warmup):
        for model in models.values():
            model.train()
            step(model, x)
    for _ in range(iters):
        for name, model in models.items():
            model.train()
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step(model, x)
            times[name]['train'].append(time.perf_counter() - start)
            model.eval()
            with torch.no_grad():
                start = time.perf_counter()
                model(x)
                times[name]['infer'].append(time.perf_counter() - start)
    return {n: {k: median(v) for k, v in t.items()} for n, t in times.items()}


def rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def measure_memory_here(name, depth, batch, size):
    """Run in a fresh process: peak RSS growth over one fwd+bwd."""
    torch.manual_seed(0)
    model = build(name, depth)
    model.train()
    x = torch.randn(batch, 3, size, size)
    before = rss_bytes()
    step(model, x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(peak=peak - before)))


def measure_memory(name, args) -> int:
    out = subprocess.run(
        [sys.executable, __file__, '--memory-of', name, '--depth',
         str(args.depth), '--batch-size', str(args.batch_size),
         '--img-size', str(args.img_size)],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'memory run of {name} failed:\n{out.stderr}')
    return json.loads(out.stdout.strip().splitlines()[-1])['peak']


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--topology', nargs='+', default=['learnable'],
                        choices=sorted(TOPOLOGIES))
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--memory-of', help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        return measure_memory_here(args.memory_of, args.depth,
                                   args.batch_size, args.img_size)
    names = ['stock', *args.topology]
    torch.manual_seed(0)
    peaks = {name: measure_memory(name, args) for name in names}
    models = {name: build(name, args.depth) for name in names}
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size)
    times = time_models(models, x, args.iters, args.warmup)
    flops_x = torch.randn(1, 3, args.img_size, args.img_size)
    results = {}
    for name, model in models.items():
        results[name] = dict(
            train_s=times[name]['train'],
            infer_s=times[name]['infer'],
            peak_mem=peaks[name],
            params=parameter_count(model)[''],
            flops=count_flops(model, (flops_x, )),
        )
    base = results['stock']
    print(f'ResNet-{args.depth}, batch {args.batch_size}, '
          f'{args.img_size}x{args.img_size}, {torch.get_num_threads()} '
          f'threads, {args.iters} iters; ratios against mmdet ResNet')
    header = ('| model | fwd+bwd | inference (eval) | peak memory | params '
              '| FLOPs |')
    print(header)
    print('|' + ' --- |' * 6)
    for name, r in results.items():
        print(f"| {name} | {r['train_s'] * 1e3:.0f} ms "
              f"({r['train_s'] / base['train_s']:.3f}x) | "
              f"{r['infer_s'] * 1e3:.0f} ms "
              f"({r['infer_s'] / base['infer_s']:.3f}x) | "
              f"{r['peak_mem'] / 2**20:.0f} MiB "
              f"({r['peak_mem'] / base['peak_mem']:.3f}x) | "
              f"{r['params'] / 1e6:.3f} M "
              f"({r['params'] / base['params']:.4f}x) | "
              f"{r['flops'] / 1e9:.3f} G "
              f"({r['flops'] / base['flops']:.4f}x) |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=2)


if __name__ == '__main__':
    main()
