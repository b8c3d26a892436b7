import os
import tempfile

# Small, deterministic CPU runs for the whole suite.
os.environ.setdefault('OMP_NUM_THREADS', '2')

# torch 2.13's inductor reuses CPU kernels compiled under another
# ATEN_CPU_CAPABILITY: compiled results then differ from eager entirely, or
# the heap is corrupted. One compile cache per capability keeps the compile
# tests right when the suite runs under each in turn.
os.environ.setdefault(
    'TORCHINDUCTOR_CACHE_DIR',
    os.path.join(
        tempfile.gettempdir(), 'torchinductor_mmtopo_' +
        os.environ.get('ATEN_CPU_CAPABILITY', 'native')))


def pytest_collection_modifyitems(config, items):
    """Start the long trainings a selected test needs, in the background
    (tests/background.py)."""
    from tests import background
    if background.start(
        {name
         for item in items
         for name in getattr(item, 'fixturenames', ())}):
        # the lane is one thread the later tests wait for; where a test
        # runs two threads (or a tool two ranks) beside it, let it yield
        # to the lane rather than the lane to it
        os.nice(5)


def pytest_terminal_summary(terminalreporter):
    from tests import background
    lines = background.report()
    if lines:
        terminalreporter.section('background trainings')
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    from tests import background
    background.stop_all()
