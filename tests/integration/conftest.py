import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import egwtest  # noqa: E402
from httptest import HttpBackend  # noqa: E402


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


@pytest.fixture
def clean_exit(gateways):
    """Every gateway of a test drains and exits cleanly at its end, with no
    sanitizer report (the suite also runs on the ASan + UBSan build). A test
    module opts in with `pytestmark = pytest.mark.usefixtures("clean_exit")`."""
    yield
    for g in gateways:
        if g.proc.poll() is None:
            g.stop(timeout=30)
        log = g.log()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in log, log[-4000:]
        assert g.proc.returncode == 0, log[-2000:]


@pytest.fixture
def backend():
    """One HTTP/1.1 test backend (httptest.HttpBackend) on a loopback port."""
    b = HttpBackend()
    yield b
    b.stop()
