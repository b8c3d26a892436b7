#!/usr/bin/env bash
# Make .venv/ hold the whole mmtopo stack; do nothing when it already does.
#
# The stamp file .venv/.mmtopo-ready is written only after every step and the
# final import check have passed, so a failed or interrupted run never leaves
# a venv that the next run mistakes for a good one (it re-runs every step;
# pip skips what is already there).
#
# Variables:
#   PYTHON        interpreter for the venv (default: python3.11, else python3)
#   MMTOPO_CACHE  where the built mmcv wheel is kept (default ~/.cache/mmtopo)
#   FORCE_CUDA=1  build mmcv's CUDA ops as well (needs nvcc and a CUDA torch);
#                 the default follows torch.cuda.is_available().
#
# With --compat it builds .venv-compat/ instead, holding the oldest supported
# stack (requirements/compat/: torch 2.1, mmengine 0.8.3), for make test-compat.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=.venv
TORCH_REQS=requirements/torch.txt
CONSTRAINTS=requirements/constraints.txt
if [ "${1:-}" = "--compat" ]; then
    VENV=.venv-compat
    TORCH_REQS=requirements/compat/torch.txt
    CONSTRAINTS=requirements/compat/constraints.txt
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [--compat]" >&2
    exit 2
fi
STAMP=$VENV/.mmtopo-ready
PY=$VENV/bin/python
CACHE=${MMTOPO_CACHE:-$HOME/.cache/mmtopo}

step() { printf '\n[setup] %s\n' "$*"; STEP_START=$SECONDS; }
done_step() { printf '[setup]   done in %ss\n' $((SECONDS - STEP_START)); }
fail() {
    printf '\n[setup] FAILED during: %s\n' "${CURRENT:-setup}" >&2
    printf '[setup] .venv is not marked ready; fix the cause and run again.\n' >&2
}
trap fail ERR

rm -f "$STAMP"

CURRENT="creating $VENV"
if [ ! -x "$PY" ]; then
    step "$CURRENT"
    PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
    "$PYTHON" -m venv "$VENV"
    done_step
fi
PIP=("$PY" -m pip install --disable-pip-version-check --quiet)

CURRENT="build tools (setuptools<81 keeps pkg_resources for mmengine)"
step "$CURRENT"
"${PIP[@]}" --upgrade "pip>=24" "setuptools>=77,<81" wheel ninja
done_step

CURRENT="torch + torchvision ($TORCH_REQS)"
step "$CURRENT"
TORCH_CHECK="import torch, torchvision
torchvision.ops.nms(torch.rand(2, 4), torch.rand(2), 0.5)"
if ! "$PY" -c "$TORCH_CHECK" 2>/dev/null; then
    # Registry builds only: pip's config here also points at a local CPU-only
    # torch file (a '+cpu' local version, which pip prefers), and no
    # torchvision exists for it).
    PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= \
        "${PIP[@]}" --force-reinstall --no-deps -r "$TORCH_REQS"
    PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= "${PIP[@]}" -r "$TORCH_REQS" \
        -c "$CONSTRAINTS"
    "$PY" -c "$TORCH_CHECK"
fi
done_step

CURRENT="mmcv 2.1.0 with compiled ops"
step "$CURRENT"
if ! "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
    variant=$("$PY" - <<'EOF'
import os, sys, torch
cuda = os.environ.get('FORCE_CUDA') == '1' or torch.cuda.is_available()
tag = f'cu{torch.version.cuda}' if cuda and torch.version.cuda else 'cpu'
print(f'py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__.split("+")[0]}-{tag}')
EOF
)
    wheel_dir=$CACHE/wheels/$variant
    if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
        echo "[setup]   no cached wheel in $wheel_dir: building mmcv (about 6 min on 2 cores)"
        mkdir -p "$wheel_dir"
        tmp=$(mktemp -d)
        # -g0 after Python's own -g: no debug info in the ops, which cuts
        # the compile time by a third and the wheel to a fraction
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            CFLAGS="${CFLAGS:-} -g0" \
            "$PY" -m pip wheel --no-build-isolation --no-deps --quiet \
            --no-cache-dir -w "$tmp" mmcv==2.1.0
        mv "$tmp"/mmcv-2.1.0-*.whl "$wheel_dir"/
        rm -rf "$tmp"
    fi
    "${PIP[@]}" --no-deps --force-reinstall "$wheel_dir"/mmcv-2.1.0-*.whl
fi
done_step

CURRENT="runtime, classification and test requirements"
step "$CURRENT"
"${PIP[@]}" -r requirements.txt -r requirements/tests.txt -c "$CONSTRAINTS"
done_step

CURRENT="mmtopo in editable mode"
step "$CURRENT"
"${PIP[@]}" --no-deps --no-build-isolation -e .
done_step

CURRENT="import check"
step "$CURRENT"
"$PY" - <<'EOF'
import mmcv, mmdet, mmengine, mmpretrain, pycocotools, torch, torchvision
from mmcv.ops import RoIAlign, nms
import mmtopo
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
assert keep.tolist() == [0], keep
print(f'[setup]   torch {torch.__version__}, mmcv {mmcv.__version__} (ops ok), '
      f'mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmtopo {mmtopo.__version__}')
EOF
done_step

touch "$STAMP"
echo "[setup] .venv is ready"
