"""The stack imports and runs: compiled mmcv ops, configs of both mm libs."""
import re
import subprocess
import sys
from pathlib import Path

import torch
from mmengine.config import Config

from tests.helpers import REPO, run_tool


def test_mmcv_ops_run_on_cpu():
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feat = torch.arange(16.).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 2., 2.]])
    out = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=1,
                   aligned=False)(feat, rois)
    # one sample at the centre (1, 1) of the 2x2 box
    assert out.item() == feat[0, 0, 1, 1].item()


def test_config_inherits_stock_mmdet_and_mmpretrain(tmp_path):
    det = tmp_path / 'det.py'
    det.write_text(
        "_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['mmtopo'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(type='TopoResNet', "
        "topology=dict(type='learnable')))\n")
    cfg = Config.fromfile(str(det))
    assert cfg.model.type == 'FasterRCNN'
    assert cfg.model.backbone.type == 'TopoResNet'
    assert cfg.model.backbone.depth == 50
    assert cfg.train_dataloader.dataset.type == 'CocoDataset'
    cls = tmp_path / 'cls.py'
    cls.write_text("_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'\n"
                   "model = dict(backbone=dict(type='TopoResNet'))\n")
    cfg = Config.fromfile(str(cls))
    assert cfg.model.type == 'ImageClassifier'
    assert cfg.model.backbone.type == 'TopoResNet'
    assert cfg.model.backbone.depth == 50


def test_works_without_mmpretrain():
    """mmtopo never needs mmpretrain (mmdet itself imports it when present,
    in a try-import, so we make it unimportable)."""
    code = (
        'import sys; sys.modules["mmpretrain"] = None\n'
        'import mmtopo, torch\n'
        'from mmtopo.models import TopoResNet\n'
        'm = TopoResNet(depth=18, topology=dict(type="learnable")).eval()\n'
        'print(m(torch.randn(1, 3, 32, 32))[-1].shape)')
    out = run_tool([sys.executable, '-c', code], timeout=120,
                   check=True).stdout
    assert out.strip() == 'torch.Size([1, 512, 1, 1])'


def test_collect_env_reports_the_stack():
    from mmtopo.utils.collect_env import collect_env
    env = collect_env()
    assert env['MMCV'] == '2.1.0'
    assert env['MMCV ops'] == 'compiled'
    assert env['mmdet'] == '3.3.0'
    assert 'PyTorch' in env


def test_install_requires_has_what_the_package_imports():
    """setup.py's install_requires (from requirements/runtime.txt) names
    everything ``import mmtopo`` needs, mmcv and torch included."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmtopo_setup',
                                                  REPO / 'setup.py')
    setup_module = importlib.util.module_from_spec(spec)
    from unittest import mock
    with mock.patch('setuptools.setup'):
        spec.loader.exec_module(setup_module)
    names = {
        re.split(r'[<>=!~ ;\[]', r)[0].lower()
        for r in setup_module.read_requirements('requirements/runtime.txt')
    }
    assert {'torch', 'mmcv', 'mmengine', 'mmdet', 'pycocotools'} <= names
    assert 'mmpretrain' not in names  # classification only


def test_pinned_files_hold_no_machine_paths():
    for path in (REPO / 'requirements').glob('*.txt'):
        for line in path.read_text().splitlines():
            assert ' @ ' not in line and 'file:' not in line, (path, line)


def test_freeze_filter_drops_direct_references_and_own_terms():
    sys.path.insert(0, str(REPO / 'tools' / 'misc'))
    try:
        from constraint_lines import constraint_lines
    finally:
        sys.path.pop(0)
    freeze = '\n'.join([
        'mmcv @ file:///root/.cache/mmtopo/wheels/mmcv-2.1.0.whl#sha256=e4',
        'mmdet==3.3.0', 'torch==2.13.0', 'torchvision==0.28.0',
        'nvidia-cublas-cu13==13.0.1', 'triton==3.5.0',
        'somepkg @ https://example.invalid/somepkg.whl', 'torchmetrics==1.4',
        'numpy==2.4.6', '-e /work/main'
    ])
    assert constraint_lines(freeze) == [
        'mmdet==3.3.0', 'torchmetrics==1.4', 'numpy==2.4.6'
    ]


def test_docs_and_code_cite_only_files_the_repository_has():
    """Every markdown file named in the README, the docs and the code is
    a file of the repository."""
    tracked = subprocess.run(['git', 'ls-files'],
                             cwd=REPO,
                             text=True,
                             capture_output=True,
                             check=True).stdout.split()
    for name in tracked:
        if not name.endswith(('.py', '.md', '.sh', 'Makefile')):
            continue
        path = REPO / name
        for cited in re.findall(r'[\w./-]+\.md\b', path.read_text()):
            if cited.startswith('work_dirs/'):  # written by a command
                continue
            assert ((path.parent / cited).exists()
                    or (REPO / cited).exists()), (name, cited)


def test_install_requires_are_ranges_not_pins():
    """A library must not make pip replace a user's torch, mmcv or mmengine:
    install_requires has no exact pins (the project's venv pins those in
    requirements/constraints.txt)."""
    import importlib.metadata
    requires = importlib.metadata.requires('mmtopo')
    assert requires, 'mmtopo is not installed with its metadata'
    pinned = [r for r in requires if '==' in r and 'extra ==' not in r]
    assert pinned == []
    runtime = [
        r.split(';')[0].replace(' ', '') for r in requires if 'extra' not in r
    ]
    assert 'mmcv<2.2.0,>=2.0.0rc4' in runtime  # mmdet 3.x's own range


EXISTING_ENV_CHECK = """
import importlib.metadata, pathlib, sys
import mmtopo
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings
from mmdet.registry import MODELS
cfg = Config(dict(custom_imports=dict(imports=['mmtopo']),
                  model=dict(type='TopoResNet', depth=18,
                             topology=dict(type='learnable'))))
import_modules_from_strings(**cfg.custom_imports)
backbone = MODELS.build(cfg.model)
print(pathlib.Path(mmtopo.__file__).parent.parent)
print(type(backbone).__name__, len(backbone.stage_graphs))
print(importlib.metadata.version('mmtopo'))
"""


def test_installs_into_an_existing_environment_without_touching_it(tmp_path):
    """``pip install --no-deps -e .`` into an environment that already has
    the stack (here: a new venv that sees this one's packages through a
    .pth file): only mmtopo is added, ``import mmtopo`` and a
    ``custom_imports`` config build work, and pip's resolver accepts
    mmtopo's requirements next to the installed versions (``pip check``)."""
    import sysconfig
    env = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(env)],
                   check=True)
    python = env / 'bin' / 'python'
    site = Path(
        subprocess.run([
            str(python), '-c', "import sysconfig; "
            "print(sysconfig.get_paths()['purelib'])"
        ],
                       text=True,
                       capture_output=True,
                       check=True).stdout.strip())
    (site / 'existing_stack.pth').write_text(sysconfig.get_paths()['purelib'] +
                                             '\n')
    before = sorted(p.name for p in site.iterdir())
    run_tool([
        sys.executable, '-m', 'pip', '--python',
        str(python), 'install', '--quiet', '--disable-pip-version-check',
        '--no-deps', '--no-build-isolation', '-e',
        str(REPO)
    ],
             timeout=300,
             check=True)
    added = sorted(
        set(p.name for p in site.iterdir()) - set(before) - {'__pycache__'})
    assert added and all('mmtopo' in name for name in added), added
    check = run_tool([str(python), '-m', 'pip', 'check'], timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'No broken requirements found.' in check.stdout
    out = run_tool([str(python), '-c', EXISTING_ENV_CHECK],
                   timeout=300,
                   check=True).stdout.split('\n')
    assert Path(out[0]) == REPO
    assert out[1] == 'TopoResNet 4'


def _doc_files():
    return [
        REPO / 'README.md', *sorted((REPO / 'docs').rglob('*.md')), *sorted(
            (REPO / 'configs').rglob('README.md'))
    ]


def _anchor(header: str) -> str:
    """GitHub's anchor of a markdown header."""
    text = re.sub(r'[^\w\- ]', '', header.strip().lower())
    return text.replace(' ', '-')


def test_docs_links_resolve_to_files_and_headers():
    """Every relative link and image in the README and docs/ names a file
    of the repository, and every ``#anchor`` a header of that file."""
    checked = 0
    for doc in _doc_files():
        for target in re.findall(r'\]\(([^)\s]+)\)', doc.read_text()):
            if target.startswith(('http://', 'https://', 'mailto:')):
                continue
            path, _, anchor = target.partition('#')
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), (doc.name, target)
            if anchor:
                headers = re.findall(r'^#+ (.+)$', file.read_text(), re.M)
                assert anchor in {_anchor(h)
                                  for h in headers}, (doc.name, target)
            checked += 1
    assert checked > 20


def test_docs_name_only_tools_and_configs_that_exist():
    """The tools and configs the docs tell users to run are there."""
    for doc in _doc_files():
        text = doc.read_text()
        for path in re.findall(r'\b((?:tools|configs)/[\w./-]+\.(?:py|sh))',
                               text):
            assert (REPO / path).exists(), (doc.name, path)


def test_readme_is_a_front_page():
    """A short README (the guides are in docs/) that starts with the two
    commands' block."""
    text = (REPO / 'README.md').read_text()
    assert len(text.splitlines()) <= 200
    first_block = text.split('```bash\n', 1)[1].split('```', 1)[0]
    assert [line.split()[:2]
            for line in first_block.splitlines()] == [['make', 'demo'],
                                                      ['make', 'test']]
