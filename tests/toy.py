"""A tiny TopoResNet classifier and data set for mmengine Runner tests."""
import copy

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmtopo.models import TopoResNet

# a classifier's backbone: its norm layers train (norm_eval=False)
TINY_BACKBONE = dict(
    depth=18,
    base_channels=4,
    stem_channels=4,
    out_indices=(3, ),
    norm_eval=False,
    topology=dict(type='learnable', init='uniform'))


class ToyClassifier(BaseModel):
    """A topology backbone + linear head; ``forward`` speaks mmengine's
    protocol. The backbone: ``TINY_BACKBONE`` updated by ``backbone_args``,
    or, when given, the config ``backbone`` (any registered type)."""

    def __init__(self, num_classes=4, backbone=None, **backbone_args):
        super().__init__()
        if backbone is None:
            self.backbone = TopoResNet(**dict(TINY_BACKBONE, **backbone_args))
        else:
            self.backbone = MODELS.build(backbone)
        with torch.no_grad():  # the width of the last output, in eval mode
            self.backbone.eval()
            channels = self.backbone(torch.zeros(1, 3, 16, 16))[-1].shape[1]
            self.backbone.train()
        self.head = torch.nn.Linear(channels, num_classes)

    def forward(self, inputs, labels=None, mode='tensor'):
        feat = self.backbone(inputs)[-1].mean((2, 3))
        logits = self.head(feat)
        if mode == 'loss':
            return dict(loss=torch.nn.functional.cross_entropy(logits, labels))
        return logits


class ToyDataset(Dataset):
    """Class ``c`` is a bright blob in quadrant ``c``: learnable quickly."""

    def __init__(self, size=64, seed=0, length=None):
        # long by default: mmengine's infinite loader sleeps 2 s per epoch
        self.length = length or 16 * size
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 4, (size, ), generator=gen)
        self.images = torch.randn(size, 3, 16, 16, generator=gen) * 0.3
        for i, c in enumerate(self.labels.tolist()):
            r, q = divmod(c, 2)
            self.images[i, :, r * 8:r * 8 + 8, q * 8:q * 8 + 8] += 1.0

    def __len__(self):
        return self.length

    def __getitem__(self, idx):
        idx %= len(self.labels)
        return dict(inputs=self.images[idx], labels=self.labels[idx])


def toy_runner(work_dir,
               max_iters=20,
               hooks=(),
               optim_wrapper=None,
               checkpoint_interval=10,
               resume=False,
               load_from=None,
               seed=0,
               shuffle=True,
               **model_args):
    optim = optim_wrapper or dict(
        optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
        paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
    return Runner(
        model=ToyClassifier(**model_args),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=shuffle, seed=seed),
            batch_size=16,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=copy.deepcopy(optim),
        custom_hooks=[
            copy.deepcopy(h) if isinstance(h, dict) else h for h in hooks
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=checkpoint_interval,
                by_epoch=False),
            logger=dict(type='LoggerHook', interval=5)),
        randomness=dict(seed=seed, deterministic=False),
        resume=resume,
        load_from=load_from,
        default_scope=None,
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
    )
