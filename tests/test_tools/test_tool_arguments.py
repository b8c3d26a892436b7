"""The tools check their output paths and sizes before any work, naming
the argument and the value."""
import pytest

from tests.helpers import load_tool

CONFIG = 'configs/cls/topo_resnet18_cifar_digits.py'


def refused(tool, argv, capsys) -> str:
    """The tool exits with argparse's status 2; its message (after the
    program's name, which is the test runner's here)."""
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1].split(
        ': error: ', 1)[1]


def test_visualize_topology_wants_a_picture_file(tmp_path, capsys):
    tool = 'tools/analysis_tools/visualize_topology.py'
    ckpt = str(tmp_path / 'never_read.pth')
    assert refused(
        tool, [CONFIG, ckpt, '--out', str(tmp_path)],
        capsys) == (f"--out '{tmp_path}' is a folder; "
                    f"give the file to write, e.g. '{tmp_path / 'out.png'}'")
    assert refused(
        tool,
        [CONFIG, ckpt, '--out', str(tmp_path / 'graph')],
        capsys).endswith("must end in one of ['.png', '.pdf', '.svg', '.jpg']")
    missing = tmp_path / 'nowhere' / 'graph.png'
    assert refused(
        tool, [CONFIG, ckpt, '--out', str(missing)],
        capsys).endswith(f"its folder '{missing.parent}' does not exist")
    assert refused(
        tool, [CONFIG, ckpt, '--out',
               str(tmp_path / 'g.png'), '--dpi', '0'],
        capsys).endswith('--dpi must be an integer >= 1, got 0')


def test_prune_topology_wants_a_folder(tmp_path, capsys):
    tool = 'tools/model_converters/prune_topology.py'
    file = tmp_path / 'a_file'
    file.write_text('')
    assert refused(
        tool, [CONFIG, 'never_read.pth', str(file)],
        capsys) == (f"OUT_DIR '{file}' "
                    'is a file; give a folder to write into')
    assert refused(
        tool,
        [CONFIG, 'x.pth', str(tmp_path), '--threshold', '-1'],
        capsys).endswith('--threshold must be a finite number >= 0, '
                         'got -1.0')


@pytest.mark.parametrize('shape', [['0'], ['32', '-8'], ['1', '2', '3']])
def test_get_flops_wants_positive_sizes(shape, capsys):
    message = refused('tools/analysis_tools/get_flops.py',
                      [CONFIG, '--shape', *shape], capsys)
    assert message == ('--shape takes H W or one size, positive '
                       f'integers, got {[int(v) for v in shape]}')
