"""Draw the topology a checkpoint learned: one panel per stage.

    python tools/analysis_tools/visualize_topology.py CONFIG CHECKPOINT \
        --out work_dirs/topology.png

With ``--gates`` (a dynamic backbone), run the checkpoint over the config's
val (or test) data and draw, per edge, the mean gate of its router and how
much it varies across instances: which edges are always on, which switch.

    python tools/analysis_tools/visualize_topology.py CONFIG CHECKPOINT \
        --gates --max-images 500 --out work_dirs/gates.png

Works for detection (mmdet) and classification (mmpretrain) configs.
"""
import argparse
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)
from mmtopo.models import topology_backbone
from mmtopo.utils.validation import check_int, check_output_file
from mmtopo.visualization import draw_topology
from mmtopo.visualization.gates import (GateRecorder, draw_gates,
                                        gate_statistics)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='the config the checkpoint was '
        'trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument('--dpi', type=int, default=110)
    parser.add_argument(
        '--gates',
        action='store_true',
        help='draw the routers\' gates over a data set '
        '(dynamic wiring) instead of the static edges')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='the config\'s data loader to run (--gates)')
    parser.add_argument(
        '--max-images',
        type=int,
        default=200,
        help='stop after this many images (--gates)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    try:
        check_output_file('--out', args.out, ('.png', '.pdf', '.svg', '.jpg'))
        check_int('--dpi', args.dpi, min_value=1)
        check_int('--max-images', args.max_images, min_value=1)
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    # strict: a config that does not match the checkpoint is an error
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    name, backbone = topology_backbone(model)
    if args.gates:
        fig, instances = _gates_figure(
            cfg, args, model, backbone, title=f'{name} of {args.checkpoint}')
        what = f'Gates over {instances} instances'
    else:
        fig = draw_topology(
            backbone.topology_graphs(), title=f'{name} of {args.checkpoint}')
        what = 'Topology'
    fig.savefig(args.out, dpi=args.dpi)
    print(f'{what} drawn to {args.out}')
    return 0


def _gates_figure(cfg, args, model, backbone, title):
    """Run ``model`` over the data set in eval mode, recording the gates."""
    from mmengine.runner import Runner
    recorder = GateRecorder(backbone)  # refuses a backbone without routers
    loader = Runner.build_dataloader(cfg[f'{args.split}_dataloader'])
    model.eval()
    seen = 0
    with torch.no_grad(), recorder.recording():
        for batch in loader:
            model.test_step(batch)
            seen += len(batch['inputs'])
            if seen >= args.max_images:
                break
    stats = gate_statistics(recorder)
    for stage in stats:
        for e in stage['edges']:
            print(f"{stage['name']} {e['i']}->{e['j']}: weight "
                  f"{e['weight']:.3f}, gate {e['mean']:.3f} ± {e['std']:.3g}"
                  f", cut for {100 * e['closed']:.1f}% of instances")
    return (draw_gates(stats, title=title,
                       instances=recorder.instances), recorder.instances)


if __name__ == '__main__':
    sys.exit(main())
