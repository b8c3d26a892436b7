from .layer_decay_constructor import TopoLearningRateDecayOptimizerConstructor
from .plain_groups_constructor import PlainGroupsOptimWrapperConstructor

__all__ = [
    'PlainGroupsOptimWrapperConstructor',
    'TopoLearningRateDecayOptimizerConstructor'
]
