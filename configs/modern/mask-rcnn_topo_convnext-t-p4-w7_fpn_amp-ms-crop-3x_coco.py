# Mask R-CNN with a TopoConvNeXt-T: the blocks of each stage (3/3/9/3)
# learn their wiring, the downsampling layers stay apart. ConvNeXt's blocks
# add their own shortcuts, so an edge weighs a block's whole output and the
# residual init is the stock ConvNeXt-T (its ImageNet checkpoint loads
# unchanged). mmdet's ConvNeXt recipe is kept: AdamW with layer-wise
# learning-rate decay, whose constructor is swapped for one that puts the
# edges in a group of their own (base learning rate, no weight decay).
_base_ = ('mmdet::convnext/'
          'mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py')

# the recipe's own imports plus mmtopo (the shared learned_topology base
# cannot sit beside a base that sets custom_imports)
custom_imports = dict(
    imports=['mmpretrain.models', 'mmtopo'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        type='TopoConvNeXt', topology=dict(type='learnable', init='residual')))
optim_wrapper = dict(constructor='TopoLearningRateDecayOptimizerConstructor')
# AdamW: lambda on the scale of the learning rate (see RTMDet-l's config)
custom_hooks = [dict(type='EdgeSparsityHook', lambda_=0.1, interval=50)]
