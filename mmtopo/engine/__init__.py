from .hooks import EdgeSparsityHook

__all__ = ['EdgeSparsityHook']
