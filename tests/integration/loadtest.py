"""Helpers for the load generator's integration tests: egw-test-backend,
expressgateway-load and wrk as subprocesses on loopback, pinned to CPUs when
the machine has more than one (the backend on one, the client on another,
so that neither steals the other's time).

Every wait is bounded; every server binds port 0.
"""
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("EGW_BUILD_DIR", os.path.join(ROOT, "build"))
LOAD = os.path.join(BUILD, "expressgateway-load")
BACKEND = os.path.join(BUILD, "tests", "egw-test-backend")
WRK = shutil.which("wrk")


def _build_type():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(\w*)$", f.read(), re.M)
            return m.group(1) if m else ""
    except OSError:
        return ""


# Throughput comparisons mean something only for an optimised build.
BUILD_TYPE = _build_type()
OPTIMISED = BUILD_TYPE in ("Release", "RelWithDebInfo", "")

_MULTI_CPU = (os.cpu_count() or 1) > 1 and shutil.which("taskset") is not None
BACKEND_CPU = 1 if _MULTI_CPU else None
CLIENT_CPU = 0 if _MULTI_CPU else None


def pinned(cmd, cpu):
    return ["taskset", "-c", str(cpu)] + cmd if cpu is not None else cmd


class Backend:
    """egw-test-backend on 127.0.0.1:0; stop() returns how many requests it
    answered (its "served N requests" line)."""

    def __init__(self, *args, cpu=BACKEND_CPU, timeout=10):
        self.proc = subprocess.Popen(pinned([BACKEND, "--port", "0", *map(str, args)], cpu),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._readline(timeout)
        m = re.match(r"listening on (\S+):(\d+)$", line.strip())
        if not m:
            self.kill()
            raise AssertionError(f"egw-test-backend did not start: {line!r} "
                                 f"{self.proc.stderr.read() if self.proc.stderr else ''}")
        self.host, self.port = m.group(1), int(m.group(2))

    def _readline(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.kill()
            raise AssertionError(f"egw-test-backend printed nothing in {timeout}s")
        return self.proc.stdout.readline()

    def url(self, path="/"):
        return f"http://{self.host}:{self.port}{path}"

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        m = re.search(r"served (\d+) requests", out)
        return int(m.group(1)) if m else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_load(*args, cpu=CLIENT_CPU, timeout=60):
    """Runs expressgateway-load; returns the CompletedProcess (text)."""
    return subprocess.run(pinned([LOAD, *map(str, args)], cpu), capture_output=True, text=True,
                          timeout=timeout)


def run_load_json(*args, cpu=CLIENT_CPU, timeout=60, expect_rc=0):
    """Runs expressgateway-load with --json; returns (parsed JSON, process)."""
    with tempfile.TemporaryDirectory(prefix="egw-load-") as d:
        path = os.path.join(d, "out.json")
        p = run_load(*args, "--json", path, cpu=cpu, timeout=timeout)
        assert p.returncode == expect_rc, (
            f"exit {p.returncode}, wanted {expect_rc}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        with open(path) as f:
            return json.load(f), p


# wrk's --latency table stops at p99; a done() script reads p99.9 and the
# maximum from the same histogram.
_WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("wrk_requests %d\\n", summary.requests))
  io.write(string.format("wrk_duration_us %d\\n", summary.duration))
  io.write(string.format("wrk_max_us %d\\n", latency.max))
  io.write(string.format("wrk_p999_us %d\\n", latency:percentile(99.9)))
  io.write(string.format("wrk_p99_us %d\\n", latency:percentile(99)))
end
"""


def run_wrk(url, connections, seconds, threads=1, cpu=CLIENT_CPU, timeout=60):
    """Runs wrk; returns a dict: rate (its Requests/sec), requests,
    duration_us, max_us, p99_us, p999_us and its text output."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_SCRIPT)
        script = f.name
    try:
        cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
               script, url]
        p = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(script)
    assert p.returncode == 0, f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    out = {"text": p.stdout}
    m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
    assert m, p.stdout
    out["rate"] = float(m.group(1))
    for key, value in re.findall(r"^wrk_(\w+) (-?\d+)$", p.stdout, re.M):
        out[key] = int(value)
    return out


def free_port():
    """A loopback port that nothing listens on (bound, then released)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_hdr(text):
    """HdrHistogram percentile-distribution text -> (rows, footer dict).
    rows: (value, percentile, total_count) tuples in file order."""
    rows = []
    footer = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("Value"):
            continue
        if line.startswith("#["):
            for k, v in re.findall(r"(\w[\w ]*?)\s*=\s*([\d.]+)", line):
                footer[k.strip()] = float(v)
            continue
        parts = line.split()
        rows.append((float(parts[0]), float(parts[1]), int(parts[2])))
    return rows, footer


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def wait_for(pred, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False
