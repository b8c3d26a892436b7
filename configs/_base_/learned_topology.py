# What a learned-topology config adds to its library's recipe, used as a
# second base beside it:
#
#   _base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
#             '../_base_/learned_topology.py']
#   optim_wrapper = _base_.topology_optim_wrapper
#   custom_hooks = [_base_.edge_sparsity_hook]
#
# (a base may not define a key its sibling base defines, so the recipe's
# optim_wrapper and custom_hooks are extended by the config itself)
custom_imports = dict(imports=['mmtopo'], allow_failed_imports=False)

# no weight decay on the edges: the L1 proximal step is their regularizer
topology_optim_wrapper = dict(
    # plain-dict param groups, so that compile=True can trace the step
    constructor='PlainGroupsOptimWrapperConstructor',
    paramwise_cfg=dict(custom_keys={'edge_weights': dict(decay_mult=0.)}))
edge_sparsity_hook = dict(type='EdgeSparsityHook', lambda_=1e-4, interval=50)
