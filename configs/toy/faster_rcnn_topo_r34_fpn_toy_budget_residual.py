# The demo's detector with the residual wiring: exactly a (half-width)
# ResNet-34, the baseline of the budget comparison
# (tools/analysis_tools/compare_budgets.py toy_detection).
_base_ = './faster_rcnn_topo_r34_fpn_toy_budget.py'

model = dict(backbone=dict(topology=dict(_delete_=True, type='residual')))
custom_hooks = []
