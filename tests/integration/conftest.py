import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egwtest  # noqa: E402


def pytest_configure(config):
    if not os.path.exists(egwtest.BINARY):
        pytest.exit(f"{egwtest.BINARY} not built", returncode=1)


@pytest.fixture
def gateways():
    """Collects gateways started by a test and kills whatever is left."""
    started = []
    yield started
    for g in started:
        if g.proc.poll() is None:
            g.kill()
        g.cleanup()
