from .plain_groups_constructor import PlainGroupsOptimWrapperConstructor

__all__ = ['PlainGroupsOptimWrapperConstructor']
