from .hooks import EdgeSparsityHook, TopologyVisualizationHook
from .optimizers import (PlainGroupsOptimWrapperConstructor,
                         TopoLearningRateDecayOptimizerConstructor)

__all__ = [
    'EdgeSparsityHook', 'TopologyVisualizationHook',
    'PlainGroupsOptimWrapperConstructor',
    'TopoLearningRateDecayOptimizerConstructor'
]
