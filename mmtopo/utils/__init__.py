from .checkpoint import (MMENGINE_CHECKPOINT_GLOBALS,
                         allow_mmengine_checkpoints,
                         name_unreadable_checkpoints)

__all__ = [
    'MMENGINE_CHECKPOINT_GLOBALS', 'allow_mmengine_checkpoints',
    'name_unreadable_checkpoints'
]
