from .model import init_model, parse_cfg_options

__all__ = ['init_model', 'parse_cfg_options']
