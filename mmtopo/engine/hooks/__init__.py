from .edge_sparsity_hook import EdgeSparsityHook
from .topology_visualization_hook import TopologyVisualizationHook

__all__ = ['EdgeSparsityHook', 'TopologyVisualizationHook']
