from .hooks import EdgeSparsityHook, TopologyVisualizationHook
from .optimizers import PlainGroupsOptimWrapperConstructor

__all__ = [
    'EdgeSparsityHook', 'TopologyVisualizationHook',
    'PlainGroupsOptimWrapperConstructor'
]
