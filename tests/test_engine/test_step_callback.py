"""StepCallback: a function after every step an optimizer really takes,
whatever has happened to the optimizer class's hooks."""
from unittest import mock

import pytest
import torch
from mmengine.optim.scheduler import MultiStepLR

from mmtopo.engine.hooks.step_callback import StepCallback


def sgd():
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)
    return param, torch.optim.SGD([param], lr=0.1)


def test_runs_after_each_step_and_is_removed_cleanly():
    param, optimizer = sgd()
    seen = []
    callback = StepCallback(optimizer, lambda opt: seen.append(
        (opt, float(param[0]))))
    optimizer.step()
    optimizer.step()
    # after the step: the callback sees the stepped weights
    assert [opt for opt, _ in seen] == [optimizer, optimizer]
    assert [w for _, w in seen] == pytest.approx([0.9, 0.8])
    callback.remove()
    assert 'step' not in vars(optimizer)
    optimizer.step()
    assert len(seen) == 2


def test_runs_where_the_class_step_has_lost_torchs_hook_wrapper():
    """torch 2.1's torch.compile unwraps every torch.optim class's step
    (its profiling wrapper, which runs the step post-hooks): torch's own
    post-hooks then never fire, the callback does."""
    param, optimizer = sgd()
    post_hooks, seen = [], []

    def plain_step(self, closure=None):  # the class step, unwrapped
        with torch.no_grad():
            for group in self.param_groups:
                for p in group['params']:
                    p.add_(p.grad, alpha=-group['lr'])

    with mock.patch.object(torch.optim.SGD, 'step', plain_step):
        optimizer.register_step_post_hook(lambda *args: post_hooks.append(1))
        StepCallback(optimizer, lambda opt: seen.append(1))
        optimizer.step()
    assert post_hooks == [] and seen == [1]
    assert float(param[0]) == pytest.approx(0.9)


def test_composes_with_a_scheduler_that_wraps_the_step_later():
    """mmengine's (and torch's) schedulers wrap ``optimizer.step`` on the
    instance and read its ``__func__``: built after the callback, both
    run, and removing the callback keeps the scheduler's wrapper."""
    _, optimizer = sgd()
    seen = []
    callback = StepCallback(optimizer, lambda opt: seen.append(1))
    MultiStepLR(optimizer, milestones=[1])
    counted = optimizer._global_step  # the scheduler's count of steps
    optimizer.step()
    assert seen == [1] and optimizer._global_step == counted + 1
    callback.remove()
    optimizer.step()
    assert seen == [1] and optimizer._global_step == counted + 2
