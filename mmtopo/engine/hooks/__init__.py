from .edge_sparsity_hook import EdgeSparsityHook

__all__ = ['EdgeSparsityHook']
