"""An optimizer-wrapper constructor that ``compile=True`` can trace."""
import torch
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_CONSTRUCTORS

from ...registry import OPTIM_WRAPPER_CONSTRUCTORS


@MMENGINE_CONSTRUCTORS.register_module()
@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PlainGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, whose optimizer holds its parameter
    groups as plain dicts.

    With a ``paramwise_cfg`` (mmtopo's configs exempt the edges from weight
    decay through one), the default hands the optimizer ``ConfigDict``
    groups. ``compile=True`` compiles the runner's ``train_step``, the
    optimizer step included, and torch 2.13's dynamo fails on such groups
    inside ``optimizer.step()`` ("'UserDefinedDictVariable' object has no
    attribute 'items'"); on plain dicts it traces.
    """

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        wrapper = super().__call__(model)
        groups = wrapper.optimizer.param_groups
        groups[:] = [dict(group) for group in groups]
        return wrapper
