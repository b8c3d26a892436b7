"""What a learned, pruned topology buys: metric against FLOPs under budgets.

For one task and several seeds, trains (through tools/train.py, same
schedule) the residual wiring (stock ResNet), the dense learnable wiring
(lambda 0) and the learnable wiring under edge and FLOPs budgets. Every
learnable run is pruned at 0 (``mmtopo.utils.pruning``) and the pruned
model evaluated again through tools/test.py: on the held-out test split of
toy detection and ``digits_3way`` (the val metric is the trained model's,
which pruning at 0 keeps), on val for the two-way ``digits``. Prints a
table of metric (mean ± std), backbone FLOPs as a fraction of the dense
graph's, active edges, and the pruned backbone's measured inference time
against the dense graph's (same weights, every edge active), both timed in
this process, interleaved; writes a plot of the metric (test where there is
a test split) against FLOPs.

    python tools/analysis_tools/compare_budgets.py digits --seeds 0 1 2 \
        --out work_dirs/budgets/digits.md --plot work_dirs/budgets/digits.png
    python tools/analysis_tools/compare_budgets.py digits_3way --seeds 0 1 \
        2 3 4 --runs dense flops_0_85 --finetune
    python tools/analysis_tools/compare_budgets.py digits --runs dense \
        flops_0_85 --finetune \
        --cfg-options optim_wrapper.optimizer.weight_decay=1e-4

Tasks use the ResNet-34 stage layout (3/4/6/3 blocks, 43 edges), where
there is something to prune. Not part of ``make test``: each run trains a
model (digits about a minute, toy detection a few minutes on 2 cores).
"""
import argparse
from pathlib import Path
from statistics import mean, pstdev

from mmtopo.apis import init_model
from mmtopo.datasets import ensure_dataset
from mmtopo.experiments import TASKS as TRAIN_TASKS
from mmtopo.experiments import (data_options, print_table, schedule_options,
                                spread, test_metrics, train_and_score)
from mmtopo.experiments.runs import REPO

BUDGETS = dict(
    dense=dict(lambda_=0.0, lambda_growth=None),  # no budget to grow to
    ratio_0_75=dict(target_ratio=0.75),
    ratio_0_5=dict(target_ratio=0.5),
    flops_0_85=dict(target_flops=0.85),
    flops_0_7=dict(target_flops=0.7),
)

TASKS = dict(
    digits=dict(
        task='digits',
        learnable='configs/cls/topo_resnet18_cifar_digits.py',
        residual='configs/cls/topo_resnet18_cifar_digits_residual.py',
        options=['model.backbone.depth=34'],
        # 230 iterations: lambda x20 every 100, from the end of warm-up
        hook=dict(
            lambda_=1e-2,
            begin=20,
            lambda_growth=1.03,
            flops_input_shape=(3, 32, 32)),
        # half the schedule again at a tenth of the rate, cosine to 0
        finetune=[*schedule_options(5), 'optim_wrapper.optimizer.lr=0.01'],
        image=(3, 32, 32),
        batch=16),
    toy_detection=dict(
        task='toy_detection',
        learnable='configs/toy/faster_rcnn_topo_r34_fpn_toy_budget.py',
        residual='configs/toy/faster_rcnn_topo_r34_fpn_toy_budget_residual'
        '.py',
        options=[],
        hook=dict(
            lambda_=1e-2,
            begin=50,
            lambda_growth=1.03,
            flops_input_shape=(3, 128, 128)),
        # half the schedule again at the schedule's final rate (its step)
        finetune=[
            'train_cfg.max_epochs=4', 'train_cfg.val_interval=4',
            'optim_wrapper.optimizer.lr=0.001',
            'default_hooks.checkpoint.interval=4'
        ],
        image=(3, 128, 128),
        batch=4),
)

TASKS['digits_3way'] = dict(
    TASKS['digits'],
    task='digits_3way',
    # the three-way split's 14 epochs (compare_topologies), so half of them
    finetune=[*schedule_options(7), 'optim_wrapper.optimizer.lr=0.01'])


def hook_options(base: dict, budget: dict) -> list:
    """``custom_hooks.0.*=...`` options (the configs' first custom hook is
    the sparsity hook) for a run under ``budget``."""
    hook = dict(target_ratio=None, target_flops=None, **base)
    hook.update(budget)
    return [
        f'custom_hooks.0.{k}={v!r}'.replace(' ', '') for k, v in hook.items()
    ]


def run_config(spec: dict, name: str, cfg_options=()) -> tuple:
    """The config and the ``key=value`` options of run ``name``: the
    task's options, then the user's (``--cfg-options``), then, for a
    learnable run, its budget's hook options (which ``main`` keeps the
    user's from touching: they define the runs)."""
    options = [*spec['options'], *cfg_options]
    if name == 'residual':
        return spec['residual'], options
    return spec['learnable'], options + hook_options(spec['hook'],
                                                     BUDGETS[name])


def residual_flops(spec: dict) -> float:
    """The residual wiring's backbone FLOPs as a fraction of the dense
    learnable graph's (the chain computes every block, but no sums)."""
    import torch

    from mmtopo.utils.complexity import BackboneCosts, count_flops
    _, residual = init_model(
        str(REPO / spec['residual']), cfg_options=spec['options'])
    _, learnable = init_model(
        str(REPO / spec['learnable']), cfg_options=spec['options'])
    x = torch.zeros(1, *spec['image'])
    return count_flops(residual.backbone, (x, )) / BackboneCosts(
        learnable.backbone, spec['image']).total


def non_finite_edges(checkpoint: str) -> list:
    """The edge-weight tensors of ``checkpoint`` holding a NaN or inf (a
    diverged run), by state-dict key."""
    import torch

    import mmtopo  # noqa: F401  (allow-lists mmengine checkpoint types)
    state = torch.load(checkpoint, map_location='cpu')
    return [
        k for k, v in state['state_dict'].items()
        if k.endswith('edge_weights') and not torch.isfinite(v).all()
    ]


def prune_and_time(config: str,
                   checkpoint: str,
                   options,
                   out_dir: Path,
                   image,
                   batch: int,
                   repeats: int = 10) -> dict:
    """Prune the trained model at 0, save it, and measure its backbone:
    FLOPs against the dense graph, and inference time against the dense
    graph with the same weights (interleaved, median of ``repeats``)."""
    import torch

    from mmtopo.experiments.pipeline import inference_ratios
    from mmtopo.utils.complexity import BackboneCosts, count_flops, densified
    from mmtopo.utils.pruning import prune_model, save_pruned

    cfg, model = init_model(str(REPO / config), checkpoint, options)
    pruned_cfg, pruned = prune_model(cfg, model)
    cfg_path, ckpt_path = save_pruned(
        pruned_cfg, pruned, str(out_dir), 'pruned', meta=dict(threshold=0.0))
    dense = densified(model).backbone
    small = pruned.backbone
    flops = count_flops(small, (torch.zeros(1, *image), )) / BackboneCosts(
        model.backbone, image).total
    times = inference_ratios(
        small, dense, image, batch_sizes=(batch, ), rounds=repeats,
        warmup=2)[batch]
    edges = [
        w for g in model.backbone.topology_graphs() for _, _, w in g.edges
    ]
    return dict(
        flops=flops,
        config=cfg_path,
        checkpoint=ckpt_path,
        active=sum(w != 0 for w in edges),
        edges=len(edges),
        time_ratio=times['ratio'])


def plot(rows: dict, key: str, metric: str, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for name, runs in rows.items():
        if not runs:  # every seed diverged
            continue
        values = [r[key] for r in runs]
        flops = [r['flops'] for r in runs]
        ax.errorbar(
            mean(flops),
            mean(values),
            yerr=pstdev(values),
            xerr=pstdev(flops),
            fmt='o',
            capsize=3,
            label=name)
        ax.annotate(
            name, (mean(flops), mean(values)),
            fontsize=8,
            xytext=(4, 4),
            textcoords='offset points')
    ax.set_xlabel('backbone FLOPs (fraction of the dense learnable graph)')
    ax.set_ylabel(f'{metric} (mean ± std over seeds)')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--runs',
        nargs='+',
        default=['residual', *BUDGETS],
        choices=['residual', *BUDGETS])
    parser.add_argument('--data', help='data folder (default: per task)')
    parser.add_argument('--work-dir', default='work_dirs/budgets')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--plot', help='metric against FLOPs, a PNG')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides for every run (residual '
        'and learnable), as tools/train.py takes them')
    parser.add_argument(
        '--finetune',
        action='store_true',
        help='also fine-tune each pruned (fixed) graph from '
        'its pruned checkpoint, the workflow the README '
        'gives, and report its metric')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='read runs already trained in the work dir '
        'instead of training them again')
    args = parser.parse_args()
    spec = TASKS[args.task]
    clash = [o for o in args.cfg_options if o.startswith('custom_hooks.0.')]
    if clash:
        parser.error(f'--cfg-options {clash}: the sparsity hook '
                     '(custom_hooks.0) is set by each budget in --runs')
    train_task = TRAIN_TASKS[spec['task']]
    metric = train_task.metric
    data = args.data or train_task.data
    ensure_dataset(train_task.dataset, data)
    has_test = train_task.test_split
    rows, diverged = {}, {}
    for name in args.runs:
        rows[name], diverged[name] = [], 0
        for seed in args.seeds:
            out = Path(args.work_dir) / args.task / f'{name}_seed{seed}'
            config, options = run_config(spec, name, args.cfg_options)
            # val: the trained model (pruning at 0 keeps its function);
            # test: the held-out split, scored on the pruned model
            run = train_and_score(
                spec['task'],
                config,
                seed,
                data,
                out,
                options,
                reuse=args.reuse)
            bad = (
                non_finite_edges(run['checkpoint'])
                if name != 'residual' else [])
            if bad:  # nothing to prune or score: counted, left out
                print(
                    f'{name} {seed}: diverged (non-finite {bad})', flush=True)
                diverged[name] += 1
                continue
            if name == 'residual':
                run.update(
                    flops=residual_flops(spec), time_ratio=None, active=None)
            else:
                run.update(
                    prune_and_time(config, run['checkpoint'], options,
                                   out / 'pruned', spec['image'],
                                   spec['batch']))
                pruned = test_metrics(
                    run['config'],
                    run['checkpoint'],
                    out / 'pruned_test',
                    data_options(train_task, data),
                    reuse=args.reuse)[metric]
                if has_test and abs(pruned - run['test']) > 1e-9:
                    print(f'warning: {out}: the pruned model scores '
                          f'{pruned} on test, the dense one {run["test"]}')
                # without a test split (two-way digits) the configs test
                # on val
                run['test' if has_test else 'metric'] = pruned
                if args.finetune:
                    tuned = train_and_score(
                        spec['task'],
                        run['config'],
                        seed,
                        data,
                        out / 'finetuned',
                        [f'load_from={run["checkpoint"]}', *spec['finetune']],
                        reuse=args.reuse)
                    run.update(
                        finetuned=tuned['metric'],
                        finetuned_test=tuned['test'])
            rows[name].append(run)
            print(
                name,
                seed, {
                    k: run.get(k)
                    for k in ('metric', 'test', 'finetuned', 'finetuned_test',
                              'flops', 'time_ratio', 'active')
                },
                flush=True)
    tuned = (' | fine-tuned, val | fine-tuned, test' if args.finetune else '')
    lines = [
        f'| run | diverged | val {metric} (mean ± std, the runs that '
        f'did not diverge) | val per seed | test (mean ± std) | test per '
        f'seed{tuned} | active edges | backbone FLOPs vs dense | '
        'inference time vs dense |', '| --- ' * (9 + 2 * args.finetune) + '|'
    ]
    for name, runs in rows.items():
        if not runs:
            lines.append(
                f'| {name} | {diverged[name]} / {len(args.seeds)} | ' +
                ' | '.join(['-'] * (7 + 2 * args.finetune)) + ' |')
            continue
        cells = [
            f'{diverged[name]} / {len(args.seeds)}',
            *spread([r['metric'] for r in runs]),
            *spread([r['test'] for r in runs])
        ]
        if args.finetune:
            cells += [
                spread([r.get('finetuned') for r in runs])[0],
                spread([r.get('finetuned_test') for r in runs])[0]
            ]
        if name == 'residual':
            cells += ['fixed chain', f'{runs[0]["flops"]:.3f}x', '-']
        else:
            cells += [
                f'{mean(r["active"] for r in runs):.1f} / '
                f'{runs[0]["edges"]}',
                f'{mean(r["flops"] for r in runs):.3f}x',
                f'{mean(r["time_ratio"] for r in runs):.3f}x'
            ]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    print_table(lines, args.out)
    if args.plot:
        key, label = ('test', 'test') if has_test else ('metric', 'val')
        plot(
            rows, key, f'{label} {metric}', args.plot,
            f'{args.task}: learned topologies pruned under budgets '
            f'({len(args.seeds)} seeds)')


if __name__ == '__main__':
    main()
