# The README's two commands. Both first make sure .venv/ holds the stack
# (tools/setup_env.sh; it does nothing when the venv is already complete).
PY := .venv/bin/python
READY := .venv/.mmtopo-ready
SETUP_INPUTS := tools/setup_env.sh setup.py requirements.txt $(wildcard requirements/*.txt)

.PHONY: test lint test-slow test-compat demo setup env benchmark benchmark-gpu stability mutation freeze

$(READY): $(SETUP_INPUTS)
	bash tools/setup_env.sh

setup: $(READY)

## make test: the style checks, then the whole suite (experiments are
## separate commands below)
test: lint
	$(PY) -m pytest tests -q --durations=15

## make lint: flake8, isort and yapf as OpenMMLab projects run them
## (settings in setup.cfg); fix with `isort` and `yapf -i -r` on the same paths
LINTED := mmtopo tools tests configs conftest.py setup.py
lint: $(READY)
	$(PY) -m flake8 $(LINTED)
	$(PY) -m isort --check-only --diff $(LINTED)
	$(PY) -m yapf --diff --recursive $(LINTED)

## make test-slow: the tests marked slow (torch.compile'd training runs)
test-slow: $(READY)
	$(PY) -m pytest tests -q -m slow

## make test-compat: the fast model, engine and utils tests on the oldest
## supported stack (requirements/compat/: torch 2.1.2, mmengine 0.8.3), in a
## second venv, .venv-compat/ (its mmcv wheel is cached like the main one)
COMPAT_READY := .venv-compat/.mmtopo-ready
$(COMPAT_READY): $(SETUP_INPUTS) $(wildcard requirements/compat/*.txt)
	bash tools/setup_env.sh --compat

test-compat: $(COMPAT_READY)
	.venv-compat/bin/python -m pytest tests/test_models tests/test_engine tests/test_utils -q

## make demo: toy COCO set -> stock R-18 Faster R-CNN vs a supernet searched,
## pruned to its FLOPs and fine-tuned -> COCO mAP on the test split -> picture
demo: $(READY)
	$(PY) tools/demo.py

env: $(READY)
	$(PY) -m mmtopo.utils.collect_env

## make benchmark: every row of the README's cost tables against mmdet's
## ResNet-50, RegNetX-3.2GF, MobileNetV2, CSPNeXt, CSPDarknet, Swin-T,
## ConvNeXt-T and Faster R-CNN, on this machine's CPU (about 40 minutes)
BENCH := $(PY) tools/analysis_tools/benchmark_backbone.py --iters 9
benchmark: $(READY)
	$(BENCH) --topology learnable learnable_uniform complete residual dynamic
	$(BENCH) --topology learnable learnable_uniform --channels-last
	$(BENCH) --topology learnable learnable_uniform --amp bf16
	$(BENCH) --topology learnable learnable_uniform --compile --no-memory
	$(BENCH) --backbone regnet --arch regnetx_3.2gf --topology learnable learnable_uniform residual
	$(BENCH) --backbone mobilenet_v2 --topology learnable learnable_uniform residual dynamic
	for family in cspnext csp_darknet swin convnext; do \
	    $(BENCH) --backbone $$family --topology learnable residual || exit 1; done
	$(PY) tools/analysis_tools/benchmark_detector.py --iters 9 \
	    mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
	    configs/faster_rcnn_topo_r50_fpn.py

## make benchmark-gpu: the GPU rows of the cost tables on one CUDA device
## (set up there, so that mmcv's CUDA ops are built), against the same stock
## models; ResNet-50 at batch 32, Faster R-CNN at batch 2, 800x800
GPU_BENCH := $(PY) tools/analysis_tools/benchmark_backbone.py --device cuda --batch-size 32 --iters 15
benchmark-gpu: $(READY)
	$(GPU_BENCH) --topology learnable learnable_uniform complete residual
	$(GPU_BENCH) --topology learnable learnable_uniform --amp fp16 --channels-last
	$(GPU_BENCH) --topology learnable learnable_uniform --compile --no-memory
	$(PY) tools/analysis_tools/benchmark_detector.py --iters 15 --device cuda \
	    --batch-size 2 --img-size 800 \
	    mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
	    configs/faster_rcnn_topo_r50_fpn.py

## make stability: stock ResNet vs TopoResNet (residual, learnable + hook)
## under mmdet's and mmpretrain's stock recipes, 5 seeds each (about 1 h)
stability: $(READY)
	$(PY) tools/analysis_tools/check_stability.py detection --out work_dirs/stability/detection.md
	$(PY) tools/analysis_tools/check_stability.py cifar --out work_dirs/stability/cifar.md

## make mutation: mutation testing of the core against the fast unit tests
## (about 30 minutes; results and the equivalent survivors: docs/mutation.md)
mutation: $(READY)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements/mutation.txt
	rm -rf mutants
	OMP_NUM_THREADS=1 $(PY) -m mutmut run --max-children 2 || true
	$(PY) -m mutmut results

## make freeze: pin the exact versions of a working venv for reproducible setup
freeze: $(READY)
	{ echo '# Exact versions of a working venv (make freeze); torch pins its own CUDA deps.'; \
	  $(PY) -m pip freeze --exclude-editable | $(PY) tools/misc/constraint_lines.py; \
	} > requirements/constraints.txt
