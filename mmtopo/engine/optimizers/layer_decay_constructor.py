"""mmdet's layer-wise learning-rate decay for a backbone that learns its
wiring."""
from typing import List

import torch.nn as nn
from mmdet.engine.optimizers import LearningRateDecayOptimizerConstructor
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_CONSTRUCTORS

from ...models.backbones.rewiring import topology_backbones
from ...registry import OPTIM_WRAPPER_CONSTRUCTORS


@MMENGINE_CONSTRUCTORS.register_module()
@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TopoLearningRateDecayOptimizerConstructor(
        LearningRateDecayOptimizerConstructor):
    """mmdet's ``LearningRateDecayOptimizerConstructor`` (the layer-wise
    learning-rate decay of its ConvNeXt detection recipes) for a model whose
    backbone learns its wiring (``TopoConvNeXt``).

    mmdet's rule gives each backbone parameter a layer from its place in
    ``stages.<stage>.<block>``; a stage graph's own parameters
    (``stages.2.edge_weights``, the routers of a dynamic wiring) sit in no
    block, and the rule fails on them. They are held out of it and form
    one group of their own: no weight decay (the sparsity hook's L1 step is
    their regularizer) and the base learning rate, as the heads have, since
    they are new parameters and not part of the pretrained backbone the
    decay protects. Every other parameter is grouped exactly as mmdet's
    constructor groups it.

    The ``paramwise_cfg`` is mmdet's (``decay_rate``, ``decay_type``,
    ``num_layers``).
    """

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        wiring = {}
        for prefix, backbone in topology_backbones(module):
            for name, param in backbone.named_wiring_parameters():
                if param.requires_grad:  # frozen_stages leaves some out
                    wiring[f'{prefix}.{name}'] = param
        for param in wiring.values():
            param.requires_grad_(False)
        try:
            super().add_params(params, module, **kwargs)
        finally:
            for param in wiring.values():
                param.requires_grad_(True)
        if wiring:
            params.append(
                dict(
                    params=list(wiring.values()),
                    param_names=list(wiring),
                    weight_decay=0.,
                    lr=self.base_lr,
                    lr_scale=1.,
                    group_name='topology'))
