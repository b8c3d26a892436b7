import os
import tempfile

# Small, deterministic CPU runs for the whole suite, one thread each: the
# tests (and the tools they start) take one core, the background trainings
# (tests/background.py) the other. Two OpenMP threads beside the lane's one
# on two cores made a 10 s training test take 340 s (threads spinning at
# their barriers for a core the lane holds).
os.environ.setdefault('OMP_NUM_THREADS', '1')

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
    background.start(
        {name
         for item in items
         for name in getattr(item, 'fixturenames', ())})


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
