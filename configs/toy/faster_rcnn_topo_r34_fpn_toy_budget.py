# The demo's model (make demo): Faster R-CNN on the toy COCO set with a
# TopoResNet-34 stage layout (3/4/6/3 blocks, 43 learnable edges) at half
# width, which learns its connectivity under a budget: at most 80% of the
# dense backbone's FLOPs. The sparsity hook grows lambda until the budget
# is met (the step that meets it prunes no further), then stops; pruned
# edges grow back only within the budget, so the final graph prunes to a
# model that meets it and computes exactly the same.
_base_ = './faster_rcnn_topo_r18_fpn_toy.py'

model = dict(
    backbone=dict(
        depth=34,
        base_channels=32,
        # start dense: every block feeds every later one, so pruning has
        # paths to choose from (from the residual chain, a block only dies
        # when the chain itself is cut)
        topology=dict(type='learnable', init='uniform'),
        # zero-initialised residual branches make every block pass its
        # input on, so all in-edges of a node carry the same map and get
        # the same gradient: in a schedule this short the blocks stayed
        # so (node outputs correlated 0.997-1.000 at the end) and the
        # budget pruned by init alone. Random branches give the edges
        # distinct inputs to choose between.
        zero_init_residual=False),
    neck=dict(in_channels=[32, 64, 128, 256]))

# Edges at 10x the lr: the schedule is short (400 iterations at lr 0.01)
# for the edges to move at 1x. The sparsity step follows (its threshold is
# the edges' lr times lambda).
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'edge_weights': dict(lr_mult=10., decay_mult=0.)}))

custom_hooks = [
    dict(
        type='EdgeSparsityHook',
        lambda_=1e-2,
        begin=50,  # after the warm-up
        target_flops=0.8,
        # x20 every 100 iterations: met well before the lr step at epoch 6
        lambda_growth=1.03,
        flops_input_shape=(3, 128, 128),
        interval=10),
    dict(type='TopologyVisualizationHook', interval=4),
]
