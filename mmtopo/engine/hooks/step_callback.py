"""Run a function after every step an optimizer really takes."""
import types
from typing import Callable

import torch

_MISSING = object()


class StepCallback:
    """``fn(optimizer)`` after each ``optimizer.step()`` call that runs.

    torch's own ``register_step_post_hook`` depends on the wrapper torch puts
    on the optimizer class's ``step``, and torch 2.1's ``torch.compile``
    removes that wrapper from every ``torch.optim`` class the first time it
    compiles anything, after which post-hooks never fire again in the
    process. So the step is wrapped on the instance instead, as a bound
    method (LR schedulers wrap ``optimizer.step`` the same way and read its
    ``__func__``). A step an AMP loss scaler skips is never called, so
    ``fn`` does not run for it either.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 fn: Callable[[torch.optim.Optimizer], None]):
        self.optimizer = optimizer
        self._inner = optimizer.step
        self._own = optimizer.__dict__.get('step', _MISSING)
        self._active = True
        callback = self

        def step(opt, *args, **kwargs):
            out = callback._inner(*args, **kwargs)
            if callback._active:
                fn(opt)
            return out

        self._step = step
        optimizer.step = types.MethodType(step, optimizer)

    def remove(self) -> None:
        """Stop calling ``fn``; put the previous ``step`` back unless
        something has wrapped it since (then this one only passes on)."""
        self._active = False
        current = self.optimizer.__dict__.get('step')
        if getattr(current, '__func__', None) is self._step:
            if self._own is _MISSING:
                del self.optimizer.step
            else:
                self.optimizer.step = self._own
