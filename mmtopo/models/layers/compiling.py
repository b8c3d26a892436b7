"""Whether ``torch.compile`` is tracing the current call."""
import torch


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call. ``torch.compiler``
    has ``is_compiling`` from torch 2.3; torch 2.1 and 2.2 have it only
    as ``torch._dynamo.is_compiling``."""
    check = getattr(getattr(torch, 'compiler', None), 'is_compiling', None)
    if check is None:
        from torch._dynamo import is_compiling as check
    return check()
