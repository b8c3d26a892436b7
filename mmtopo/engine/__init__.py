from .hooks import EdgeSparsityHook, TopologyVisualizationHook

__all__ = ['EdgeSparsityHook', 'TopologyVisualizationHook']
