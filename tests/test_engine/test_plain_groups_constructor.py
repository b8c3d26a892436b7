"""PlainGroupsOptimWrapperConstructor: mmengine's groups, as plain dicts,
so that a compiled train step can trace the optimizer."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper

import mmtopo  # noqa: F401  (registers the constructor)


def optim_cfg(constructor=None):
    cfg = ConfigDict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
        paramwise_cfg=dict(custom_keys={'1.weight': dict(decay_mult=0.)}))
    if constructor:
        cfg.constructor = constructor
    return cfg


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def test_groups_are_the_default_constructors_as_plain_dicts():
    model = small_model()
    default = build_optim_wrapper(model, optim_cfg()).optimizer.param_groups
    plain = build_optim_wrapper(
        model,
        optim_cfg('PlainGroupsOptimWrapperConstructor'),
    ).optimizer.param_groups
    assert {type(g) for g in default} == {ConfigDict}  # what dynamo rejects
    assert {type(g) for g in plain} == {dict}
    assert len(plain) == len(default) == 4
    for ours, theirs in zip(plain, default):
        assert ours.keys() == theirs.keys()
        assert ours['params'][0] is theirs['params'][0]
        assert {
            k: v
            for k, v in ours.items() if k != 'params'
        } == {
            k: v
            for k, v in theirs.items() if k != 'params'
        }
    assert [g['weight_decay'] for g in plain] == [1e-4, 1e-4, 0.0, 1e-4]


@pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 2),
    reason="torch 2.1's dynamo fails tracing SGD's momentum step "
    '(InternalTorchDynamoError in _single_tensor_sgd)')
def test_a_compiled_step_through_it_equals_the_eager_step():
    """``compile=True`` compiles the runner's train_step, the optimizer's
    update included; with these groups two steps trace and update the
    weights as eager steps do."""
    x = torch.randn(2, 3, 8, 8)
    results = []
    for compiled in (False, True):
        model = small_model()
        wrapper = build_optim_wrapper(
            model, optim_cfg('PlainGroupsOptimWrapperConstructor'))

        def step():
            loss = model(x).pow(2).mean()
            wrapper.update_params(loss)
            return loss

        torch._dynamo.reset()
        step_fn = torch.compile(step) if compiled else step
        for _ in range(2):
            step_fn()
        results.append(copy.deepcopy(model.state_dict()))
    for key, value in results[0].items():
        torch.testing.assert_close(
            results[1][key], value, rtol=1e-5, atol=1e-6, msg=key)
