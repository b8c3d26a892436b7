"""A model from a config, its options and a checkpoint, as the tools build
it (mmdet's ``init_detector`` does the same for inference)."""
import argparse
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``key=value`` strings, as ``--cfg-options`` takes them, as a dict
    for ``Config.merge_from_dict``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o', *options]).o if options else {}


def init_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    cfg_options: Union[None, dict, Sequence[str]] = None,
) -> Tuple[Config, torch.nn.Module]:
    """The config (``cfg_options`` merged, as a dict or ``key=value``
    strings) and its model on the CPU, loaded from ``checkpoint`` strictly:
    a config that does not match the checkpoint is an error."""
    cfg = config.copy() if isinstance(config, Config) else \
        Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(
            cfg_options if isinstance(cfg_options, dict
                                      ) else parse_cfg_options(cfg_options))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(
            model,
            checkpoint,
            map_location='cpu',
            strict=True,
            logger='silent')
    return cfg, model
