# YOLOX-s with a TopoCSPDarknet backbone: the blocks of each stage's CSP
# layer (1/3/3/1 at deepen_factor 0.33) learn their wiring, from the
# residual init (the stock CSPDarknet). YOLOX's own recipe is kept; the
# sparsity hook is added to its hooks.
_base_ = [
    'mmdet::yolox/yolox_s_8xb8-300e_coco.py', '../_base_/learned_topology.py'
]

model = dict(
    backbone=dict(
        type='TopoCSPDarknet',
        topology=dict(type='learnable', init='residual')))
optim_wrapper = _base_.topology_optim_wrapper
# SGD lr 0.01 (YOLOX's): lambda as for the other SGD recipes
custom_hooks = [
    *_base_.custom_hooks,
    dict(_base_.edge_sparsity_hook, lambda_=1e-4, interval=50)
]
