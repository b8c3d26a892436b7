# The toy RTMDet with the stock CSPNeXt (the residual wiring is it), for
# comparison: same recipe, no sparsity hook.
_base_ = './rtmdet_topo_toy.py'
model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []
