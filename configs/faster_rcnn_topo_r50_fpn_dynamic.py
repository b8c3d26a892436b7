# Faster R-CNN, TopoResNet-50 with instance-aware (dynamic) wiring, FPN, COCO
# 1x: each node's in-edges are gated per image by a small router (DG-Net,
# Yuan et al., ICCV 2021), on top of the learned static edge weights that the
# sparsity hook prunes. Gates start at exactly 1 and the edges at the
# residual wiring, so step 0 is the ImageNet ResNet-50 it loads.
_base_ = './faster_rcnn_topo_r50_fpn.py'

model = dict(
    backbone=dict(
        topology=dict(
            _delete_=True,
            type='dynamic',
            init='residual',
            # gates below it count as 0 for that image (0: never)
            threshold=0.0,
            router=dict(type='EdgeRouter', reduction=16))))

# the routers train like the rest of the network (weight decay included);
# e.g. custom_keys={'routers': dict(decay_mult=0.)} would exempt them
