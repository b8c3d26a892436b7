"""mmtopo: learned connectivity (TopoNet) backbones for OpenMMLab."""
import re
from pathlib import Path
from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_version():
    text = (HERE / 'mmtopo' / 'version.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def read_requirements(path):
    """Plain requirement lines of ``path``, following ``-r`` includes."""
    reqs = []
    for line in (HERE / path).read_text().splitlines():
        line = line.split('#')[0].strip()
        if line.startswith('-r '):
            reqs += read_requirements(Path(path).parent / line[3:].strip())
        elif line:
            reqs.append(line)
    return reqs


setup(
    name='mmtopo',
    version=read_version(),
    description='Learning connectivity of neural networks from a topological '
    'perspective (ECCV 2020) for MMDetection and MMPretrain',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={
        'classification': read_requirements('requirements/classification.txt'),
        'tests': read_requirements('requirements/tests.txt'),
    },
    license='Apache-2.0',
    zip_safe=False,
)
