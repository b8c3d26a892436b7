"""Planted-structure training for the tests of what edges learn.

Small networks whose wiring the test decides the right answer for, trained
in a plain loop (SGD with momentum, the CIFAR recipe's learning rate 0.1,
cosine schedule) so that each run takes seconds:

* ``digits_backbone``: a ``TopoResNetCIFAR``-34 at 8 channels on
  scikit-learn's real handwritten digits, with one block of ``layer3``
  replaced by a planted node (noise added, or a constant);
* ``channel_task``: a stage of planted nodes on data whose label lives in
  one half of the channels, so the task decides which node to trust.
"""
import logging
import math
import types
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from torch import nn

from mmtopo.models import TopoResNetCIFAR


class Noisy(nn.Module):
    """A block whose output gets Gaussian noise of ``scale`` times its own
    RMS: a node that only hurts."""

    def __init__(self, block: nn.Module, scale: float = 2.0):
        super().__init__()
        self.block, self.scale = block, scale

    def forward(self, x):
        y = self.block(x)
        rms = y.detach().pow(2).mean().sqrt()
        return y + self.scale * rms * torch.randn_like(y)


class Constant(nn.Module):
    """A node whose output is one fixed map for every sample (non-negative,
    as a block's final ReLU gives): it carries no information."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block  # kept for the shapes and parameter names
        self.value = None

    def forward(self, x):
        if self.value is None or self.value.shape[1:] != x.shape[1:]:
            gen = torch.Generator().manual_seed(123)
            self.value = torch.rand(x.shape[1:], generator=gen).to(x)
        return self.value.expand_as(x)


def load_digits_tensors(size: int = 16):
    """scikit-learn's 1797 digits as ``(N, 3, size, size)`` in [-1, 1]."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 8 - 1
    x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    return x.repeat(1, 3, 1, 1), torch.tensor(digits.target)


def digits_backbone(seed: int,
                    plant: Optional[Callable] = None,
                    node: int = 3,
                    topology=None) -> nn.Module:
    """TopoResNetCIFAR-34 at 8 channels (layer3: 6 blocks, 7 nodes) with
    ``layer3``'s block ``node`` wrapped by ``plant``, and a linear head."""
    torch.manual_seed(seed)
    backbone = TopoResNetCIFAR(
        depth=34,
        base_channels=8,
        out_indices=(3, ),
        topology=topology or dict(type='learnable', init='uniform'))
    backbone.init_weights()
    if plant is not None:
        stage = backbone.layer3
        stage._modules[str(node)] = plant(stage._modules[str(node)])
    return nn.ModuleDict(dict(backbone=backbone, head=nn.Linear(64, 10)))


def digits_logits(model, x):
    return model['head'](model['backbone'](x)[-1].mean((2, 3)))


def train(model,
          logits,
          data,
          iters: int,
          seed: int,
          lr: float = 0.1,
          batch_size: int = 64,
          sparsity=None):
    """SGD (momentum 0.9, weight decay 5e-4 except on the edges) with a
    cosine schedule, and the proximal steps of ``sparsity`` (an
    ``EdgeSparsityHook``) when given. Returns the losses."""
    x, y = data
    edges = [p for n, p in model.named_parameters() if 'edge_weights' in n]
    rest = [p for n, p in model.named_parameters() if 'edge_weights' not in n]
    optimizer = torch.optim.SGD([
        dict(params=rest, weight_decay=5e-4),
        dict(params=edges, weight_decay=0.0)
    ],
                                lr=lr,
                                momentum=0.9)
    runner = None
    if sparsity is not None:  # what the hook reads of an mmengine runner
        runner = types.SimpleNamespace(
            model=model,
            optim_wrapper=OptimWrapper(optimizer),
            iter=0,
            epoch=0,
            logger=logging.getLogger('planted'),
            message_hub=MessageHub.get_instance(f'planted_{id(model)}'))
        sparsity.before_train(runner)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for it in range(iters):
        if runner is not None:
            runner.iter = it
            sparsity.before_train_iter(runner, it)
        for group in optimizer.param_groups:
            group['lr'] = lr * 0.5 * (1 + math.cos(math.pi * it / iters))
        idx = torch.randint(len(y), (batch_size, ), generator=gen)
        loss = F.cross_entropy(logits(model, x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    if runner is not None:
        sparsity.after_train(runner)
    return losses


def relative_out_weight(stage, init: torch.Tensor, node: int) -> float:
    """Mean ``|w / w_init|`` over ``node``'s out-edges, divided by the same
    over every other edge of the stage: 1 when the node's edges moved like
    the rest, 0 when they were cut."""
    mask = stage.edge_mask.cpu()
    rel = (stage.edge_weights.detach().cpu() / init.clamp(min=1e-12)).abs()
    mine = rel[node][mask[node]]
    others = torch.cat(
        [rel[i][mask[i]] for i in range(mask.shape[0]) if i != node])
    return float(mine.mean() / others.mean())


class NoisyChannels(nn.Module):
    """The identity plus strong noise on the channels ``[start, stop)``,
    one value per sample and channel (so global pooling keeps it)."""

    def __init__(self, start: int, stop: int, scale: float = 3.0):
        super().__init__()
        self.start, self.stop, self.scale = start, stop, scale

    def forward(self, x):
        noise = torch.zeros_like(x[:, :, :1, :1])
        noise[:, self.start:self.stop] = self.scale * torch.randn_like(
            noise[:, self.start:self.stop])
        return x + noise


def channel_data(task: str, seed: int, size: int = 2048, half: int = 16):
    """Images of ``2 * half`` channels: the first half carries label ``a``,
    the second label ``b`` (independent, two classes each, as a shift of
    the channel means). ``task`` picks which label is the target."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 2, (size, ), generator=gen)
    b = torch.randint(0, 2, (size, ), generator=gen)
    x = torch.randn(size, 2 * half, 4, 4, generator=gen)
    x[:, :half] += (a * 2 - 1).float()[:, None, None, None] * 0.5
    x[:, half:] += (b * 2 - 1).float()[:, None, None, None] * 0.5
    return x, (a if task == 'first' else b)


def channel_model(seed: int, half: int = 16) -> nn.Module:
    """One learnable stage: node 0 the input, node 1 clean in the first
    half of the channels (noisy in the second), node 2 the other way
    round, both summed into the output node 3; a linear head on the pooled
    output. Which of edges 1->3 and 2->3 the task needs is planted."""
    from mmtopo.models.layers import StageGraph
    from mmtopo.models.topology import build_stage_topology
    torch.manual_seed(seed)
    topology = build_stage_topology(
        dict(
            type='custom',
            edges=[(0, 1), (0, 2), (1, 3), (2, 3)],
            learnable=True), 3, 0)
    blocks = [
        nn.Identity(),
        NoisyChannels(half, 2 * half),
        NoisyChannels(0, half)
    ]
    stage = StageGraph(blocks, topology)
    return nn.ModuleDict(dict(stage=stage, head=nn.Linear(2 * half, 2)))


def channel_logits(model, x):
    return model['head'](model['stage'](x).mean((2, 3)))
