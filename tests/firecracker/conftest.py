import pytest

from fcvm import DEADLINE


@pytest.fixture
def processes():
    """Firecracker-mode microvms a test starts, killed and reaped at teardown whatever
    happened."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
