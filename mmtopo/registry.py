"""mmtopo's registries: children of MMEngine's root registries.

Everything mmtopo registers goes into the root registry (so ``type='X'``
resolves from mmdet's and mmpretrain's configs, whose registries search the
root) and into these children (so ``type='mmtopo.X'`` resolves too).
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmtopo',
    locations=['mmtopo.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmtopo', locations=['mmtopo.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmtopo',
    locations=['mmtopo.engine'])


def register_model(cls):
    """Register ``cls`` in the root ``MODELS`` and in ``mmtopo``'s."""
    MMENGINE_MODELS.register_module(module=cls)
    MODELS.register_module(module=cls)
    return cls


def register_hook(cls):
    """Register ``cls`` in the root ``HOOKS`` and in ``mmtopo``'s."""
    MMENGINE_HOOKS.register_module(module=cls)
    HOOKS.register_module(module=cls)
    return cls
