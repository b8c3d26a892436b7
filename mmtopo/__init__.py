"""mmtopo: learned connectivity (TopoNet) for OpenMMLab.

Importing it registers the backbones and hooks into MMEngine's root
registries, allow-lists the types mmengine checkpoints hold for torch's
``weights_only`` loading, and has a checkpoint file that cannot be read
named in the error. It does not import mmpretrain.
"""
from .utils import allow_mmengine_checkpoints, name_unreadable_checkpoints
from .version import __version__  # noqa: I001

allow_mmengine_checkpoints()
name_unreadable_checkpoints()

from . import engine, models, registry  # noqa: E402,F401
from .engine import EdgeSparsityHook  # noqa: E402
from .models import TopoResNet, TopoResNetV1d, TopoResNeXt  # noqa: E402

__all__ = [
    '__version__', 'TopoResNet', 'TopoResNetV1d', 'TopoResNeXt',
    'EdgeSparsityHook'
]
