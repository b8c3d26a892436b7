"""A hook for the tool tests: every rank saves its edge weights, keyed by
stage name, at the start and at the end of training."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def edge_weights(runner) -> dict:
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    return {
        name: stage.edge_weights.detach().clone()
        for name, stage in model.named_modules()
        if hasattr(stage, 'edge_mask')
    }


@HOOKS.register_module()
class RankDumpHook(Hook):
    """``edges_start_rank{r}.pth`` before the first iteration (after any
    resume or ``load_from``) and ``edges_rank{r}.pth`` after training."""

    def before_train(self, runner):
        torch.save(
            edge_weights(runner),
            osp.join(runner.work_dir, f'edges_start_rank{get_rank()}.pth'))

    def after_train(self, runner):
        torch.save(
            edge_weights(runner),
            osp.join(runner.work_dir, f'edges_rank{get_rank()}.pth'))
