"""The stage graph on a GPU: host syncs, fp16 autocast, compile.

These need CUDA and are skipped without it (CI has no GPU); they are run
on a GPU machine before a release, and the notes record the run.
"""
import copy
import warnings

import pytest
import torch

from mmtopo.models import TopoResNet
from .test_graph import check_autocast_edge_grads, grads, random_signed_weights

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device')


def small_model(**kwargs):
    torch.manual_seed(0)
    return TopoResNet(
        depth=34, base_channels=16, stem_channels=16, **kwargs).cuda()


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_a_forward_synchronises_with_the_gpu_once(mode):
    """CUDA's sync debug mode warns at every operation that waits for the
    GPU: one per forward (all stages' weights in one copy), none per
    stage."""
    model = small_model(topology=dict(type='learnable', init='uniform'))
    random_signed_weights(model)
    getattr(model, mode)()
    x = torch.randn(2, 3, 64, 64, device='cuda')
    model(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('warn')
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            model(x)
    finally:
        torch.cuda.set_sync_debug_mode('default')
    syncs = [w for w in caught if 'synchroniz' in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]


def test_fp16_autocast_edge_gradients_match_float32():
    """CUDA fp16 autocast: edge gradients are float32 and within 2% of the
    float32 step's (of each stage's largest); fp16's unit roundoff is
    2^-11, the bf16 bound of the CPU test holds with room to spare."""
    model = small_model(topology=dict(type='learnable', init='uniform'))
    model.init_weights()
    model.train()
    check_autocast_edge_grads(model, torch.randn(4, 3, 64, 64, device='cuda'),
                              'cuda', torch.float16)


def test_compiled_training_step_matches_eager_on_cuda(monkeypatch):
    """As the CPU test: outputs and gradients to 1e-4 of their scale, with
    TF32 off (its 10-bit mantissa alone moves convolutions by ~1e-3)."""
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    eager = small_model(topology=dict(type='learnable', init='uniform'))
    random_signed_weights(eager)
    eager.train()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    x = torch.randn(4, 3, 64, 64, device='cuda')
    ref_outs, ref = grads(eager, x, eager)
    outs, got = grads(compiled_model, x, compiled)
    for a, b in zip(outs, ref_outs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * b.abs().max())
    for key, expected in ref.items():
        torch.testing.assert_close(
            got[key],
            expected,
            rtol=0,
            atol=1e-4 * float(expected.abs().max()),
            msg=key)
