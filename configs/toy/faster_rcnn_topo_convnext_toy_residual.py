# The toy Faster R-CNN with the stock small ConvNeXt (the residual wiring
# is it), for comparison: same recipe, no sparsity hook.
_base_ = './faster_rcnn_topo_convnext_toy.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []
