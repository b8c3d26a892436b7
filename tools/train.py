"""Train a detector or classifier: mmdet's / mmpretrain's tools/train.py
arguments, for any config (mmtopo's or a stock one with custom_imports)."""
import argparse
import os

import mmtopo  # noqa: F401  (registers modules, safe checkpoint loading)
from mmtopo.utils.launch import (add_common_args, apply_train_args,
                                 build_runner, close_distributed, load_config)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr with the total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work dir if no path is given')
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = load_config(args)
    apply_train_args(cfg, args)
    runner = build_runner(cfg, mode='train')
    runner.train()
    close_distributed(runner)


if __name__ == '__main__':
    main()
