"""systemd integration: the sd_notify messages (READY, RELOADING, STOPPING,
STATUS, WATCHDOG) as a service manager receives them on $NOTIFY_SOCKET, and
the unit file checked by systemd-analyze."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from egwtest import BINARY, Gateway

pytestmark = pytest.mark.usefixtures("clean_exit")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CONFIG = """
[global]
workers = 2
grace_period_ms = 500

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"

[[listener.route]]
match = {}
respond = { status = 200, body = "ok" }
"""


class NotifySocket:
    """What systemd listens on for a Type=notify service."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="egw-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def until(self, key, timeout=10):
        """Messages up to and including the first that has `key`."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            seen.append(m)
            if key in m:
                return seen

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def test_ready_reloading_and_stopping_reach_the_service_manager(gateways, notify):
    g = Gateway(CONFIG, env={"NOTIFY_SOCKET": notify.path})
    gateways.append(g)
    m = notify.next()
    assert m.get("READY") == "1", m
    assert m["STATUS"] == "generation 1, 2 workers, 1 listeners", m

    # A good reload: RELOADING with the monotonic time, then READY.
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    g.reload(CONFIG.replace('body = "ok"', 'body = "ok2"'))
    seen = notify.until("READY")
    reloading = [x for x in seen if x.get("RELOADING") == "1"]
    assert reloading, seen
    usec = int(reloading[0]["MONOTONIC_USEC"])
    assert before * 1e6 - 1e6 <= usec <= time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6 + 1e6
    assert seen[-1]["STATUS"] == "generation 2, 2 workers, 1 listeners", seen

    # A bad one: READY again, saying the running configuration stays.
    g.reload("[[listener]]\nname = 1\n", expect_ok=False)
    seen = notify.until("READY")
    assert any(x.get("RELOADING") == "1" for x in seen), seen
    assert seen[-1]["STATUS"] == "reload failed: keeping generation 2 (see the log)", seen

    # SIGTERM: STOPPING while it drains.
    g.proc.send_signal(signal.SIGTERM)
    seen = notify.until("STOPPING")
    assert seen[-1]["STATUS"] == "draining (grace period 500 ms)", seen
    assert g.proc.wait(30) == 0


def test_the_watchdog_is_fed_while_every_worker_answers(gateways, notify):
    # WatchdogSec=0.4s: fed at a quarter of it, once each worker answered.
    g = Gateway(CONFIG, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    gateways.append(g)
    assert notify.next().get("READY") == "1"
    t0 = time.monotonic()
    beats = 0
    while time.monotonic() - t0 < 1.5:
        if notify.next(timeout=2).get("WATCHDOG") == "1":
            beats += 1
    # 100 ms apart in theory; the first needs a round trip to the workers.
    assert 8 <= beats <= 16, beats
    assert "every 100 ms" in g.log()


def test_no_notify_socket_no_messages_and_no_watchdog(gateways):
    # WATCHDOG_USEC without NOTIFY_SOCKET: nothing to feed.
    g = Gateway(CONFIG, env={"WATCHDOG_USEC": "400000", "NOTIFY_SOCKET": ""})
    gateways.append(g)
    assert "watchdog" not in g.log()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian's systemd package)")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    with open(os.path.join(ROOT, "config", "expressgateway.service")) as f:
        unit = f.read()
    assert "Type=notify" in unit and "ExecReload=" in unit
    # verify wants the executables to exist: point them at this build.
    unit = unit.replace("/usr/local/bin/expressgateway", os.path.abspath(BINARY))
    path = tmp_path / "expressgateway.service"
    path.write_text(unit)
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       timeout=60)
    # It exits 0 even for unknown keys and bad values, and says so on stderr.
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "", p.stderr
    # And it does say so: a bent copy is reported.
    path.write_text(unit.replace("ProtectSystem=strict", "ProtectSystem=stric"))
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert "protect system" in p.stderr.lower(), p.stderr
