"""A hook for the distributed tests: every rank saves its edge weights."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankDumpHook(Hook):

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        edges = {name.split('.')[-1]: stage.edge_weights.detach().clone()
                 for name, stage in model.named_modules()
                 if hasattr(stage, 'edge_mask')}
        torch.save(edges, osp.join(runner.work_dir,
                                   f'edges_rank{get_rank()}.pth'))
