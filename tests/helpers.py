"""Helpers shared by the tests."""
import torch
from torch.nn.modules.batchnorm import _BatchNorm


def check_norm_state(modules, train_state: bool) -> bool:
    """True if every BatchNorm among ``modules`` is in ``train_state``."""
    return all(m.training == train_state for mod in modules
               for m in mod.modules() if isinstance(m, _BatchNorm))


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Load ``src``'s state dict into ``dst``; only edge tensors may be
    missing, nothing may be unexpected."""
    result = dst.load_state_dict(src.state_dict(), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all('edge_' in k for k in result.missing_keys), result.missing_keys


def randomize_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so that eval-mode
    comparisons exercise them."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
