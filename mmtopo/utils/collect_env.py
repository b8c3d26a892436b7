"""Versions of the whole stack: ``python -m mmtopo.utils.collect_env``."""
from collections import OrderedDict


def collect_env() -> 'OrderedDict[str, str]':
    """mmengine's environment report plus the OpenMMLab packages, whether
    mmcv's compiled ops load, and the CUDA they were built with."""
    from mmengine.utils.dl_utils import collect_env as mmengine_env
    env = OrderedDict(mmengine_env())
    import mmcv
    env['MMCV'] = mmcv.__version__
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
        env['MMCV ops'] = 'compiled'
        env['MMCV compiler'] = get_compiler_version()
        env['MMCV CUDA'] = get_compiling_cuda_version()
    except ImportError as err:
        env['MMCV ops'] = f'NOT available ({err})'
    for name in ('mmdet', 'mmpretrain', 'pycocotools', 'mmtopo'):
        try:
            module = __import__(name)
            env[name] = getattr(module, '__version__', 'installed')
        except ImportError:
            env[name] = 'not installed'
    return env


def main() -> None:
    for key, value in collect_env().items():
        print(f'{key}: {value}')


if __name__ == '__main__':
    main()
