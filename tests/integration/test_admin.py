"""The admin API ([admin] socket) and `expressgateway ctl`: every command
against a running gateway with real traffic, the socket's permissions and
life cycle, endpoint state, weight and maxconn changes seen in where the
requests go, runtime changes across reloads, reloads through the API, and
clients that send garbage, too much, or too many connections."""
import concurrent.futures
import grp
import json
import os
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from egwtest import BINARY, Gateway, run_check, wait_until
from httptest import HttpBackend, Responses

pytestmark = pytest.mark.usefixtures("clean_exit")


def config(sock, backends, balancer="round_robin", extra_admin="", extra_cluster="",
           weights=None, workers=2):
    eps = ", ".join(
        f'{{ address = "{b.address}", weight = {(weights or {}).get(i, 1)} }}'
        for i, b in enumerate(backends))
    return f"""
[global]
workers = {workers}

[admin]
socket = "{sock}"
{extra_admin}

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"

[[cluster]]
name = "app"
balancer = "{balancer}"
endpoints = [ {eps} ]
{extra_cluster}
"""


def ctl(sock, *words, json_out=True, timeout=30):
    """Runs `expressgateway ctl`; returns (exit code, reply or text, stderr)."""
    args = [BINARY, "ctl", "--socket", sock] + (["--json"] if json_out else []) + list(words)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if json_out and p.stdout.strip():
        return p.returncode, json.loads(p.stdout), p.stderr
    return p.returncode, p.stdout, p.stderr


def ok(sock, *words):
    rc, r, err = ctl(sock, *words)
    assert rc == 0 and r["ok"], (rc, r, err)
    return r


def get(g, path, conn=None):
    """One GET on a new connection (or on `conn`, kept open); returns the
    status."""
    s = conn or socket.create_connection(g.address("web"), timeout=30)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, _, _ = Responses(s).next()
        return status
    finally:
        if conn is None:
            s.close()


def counts(backends):
    return [len(b.requests) for b in backends]


@pytest.fixture
def two_backends():
    bs = [HttpBackend(), HttpBackend()]
    yield bs
    for b in bs:
        b.stop()


def start(gateways, backends, **kw):
    d = tempfile.mkdtemp(prefix="egw-admin-")
    sock = os.path.join(d, "admin.sock")
    g = Gateway(config(sock, backends, **kw))
    gateways.append(g)
    wait_until(lambda: os.path.exists(sock), what="admin socket")
    return g, sock


def test_every_command_answers_and_matches_the_traffic(gateways, two_backends):
    g, sock = start(gateways, two_backends)
    for i in range(10):
        assert get(g, f"/r{i}") == 200
    assert get(g, "/status/503") == 503
    # A kept-alive connection stays open through the show commands.
    held = socket.create_connection(g.address("web"), timeout=10)
    assert get(g, "/held", held) == 200

    r = ok(sock, "help")
    assert "show stats" in r["commands"] and "reload" in r["commands"]

    info = ok(sock, "show", "info")
    assert info["version"] and info["pid"] == g.proc.pid and info["generation"] == 1
    assert info["workers"] == 2 and info["draining"] is False
    host, port = g.address("web")
    assert info["listeners"][0]["bind"] == [f"{host}:{port}"]
    assert info["clusters"][0] == {"name": "app", "balancer": "round_robin", "endpoints": 2}
    assert "release" in info["kernel"] and "multishot_accept" in info["kernel"]["io_uring"]

    st = ok(sock, "show", "stats")
    assert st["workers_answered"] == 2
    web = st["listeners"][0]
    assert web["name"] == "web" and web["sessions_total"] == 12 and web["sessions_active"] == 1
    assert web["responses"] == {"1xx": 0, "2xx": 11, "3xx": 0, "4xx": 0, "5xx": 1}
    assert web["responses_by_protocol"]["http1"]["2xx"] == 11
    app = st["clusters"][0]
    assert app["responses"]["2xx"] == 11 and app["responses"]["5xx"] == 1
    assert app["endpoints"] == 2 and app["endpoints_up"] == 2 and app["queue"] == 0
    assert sum(e["sessions"] for e in st["endpoints"]) == 12 == sum(counts(two_backends))
    assert st["totals"]["http_requests"] == 12

    eps = ok(sock, "show", "endpoints", "app")["endpoints"]
    assert [e["address"] for e in eps] == [b.address for b in two_backends]
    for e, b in zip(eps, two_backends):
        assert e["state"] == "ready" and e["health"] == "up"
        assert e["reason"] == "no active health check"
        assert e["weight"] == 1 and e["weight_source"] == "file"
        assert e["sessions"] == len(b.requests)
    rc, r, _ = ctl(sock, "show", "endpoints", "nope")
    assert rc == 1 and "no cluster 'nope' (clusters: app)" in r["error"]

    lat = ok(sock, "show", "latency")
    by_phase = {p["phase"]: p for p in lat["clusters"][0]["phases"]}
    assert by_phase["total"]["count"] == 12 and by_phase["connect"]["count"] >= 1
    assert by_phase["ttfb"]["p50_us"] <= by_phase["ttfb"]["max_us"]
    only = ok(sock, "show", "latency", "listener", "web")
    assert "clusters" not in only and only["listeners"][0]["name"] == "web"
    rc, r, _ = ctl(sock, "show", "latency", "cluster", "nope")
    assert rc == 1 and "no cluster 'nope'" in r["error"]

    ss = ok(sock, "show", "sessions")
    assert ss["total"] == 1 and "sessions" not in ss
    assert ss["by_state"] == [{"protocol": "http1", "state": "idle", "sessions": 1}]
    assert ss["by_listener"] == [{"listener": "web", "sessions": 1}]
    v = ok(sock, "show", "sessions", "verbose", "5")
    local = held.getsockname()
    assert v["sessions"][0]["client"] == f"{local[0]}:{local[1]}"
    assert v["sessions"][0]["listener"] == "web" and v["truncated"] is False
    held.close()

    # For people: tables, and errors on stderr with exit status 1.
    rc, text, _ = ctl(sock, "show", "endpoints", json_out=False)
    assert rc == 0 and "address" in text and two_backends[0].address in text
    rc, text, err = ctl(sock, "show", "nonsense", json_out=False)
    assert rc == 1 and text == "" and err.startswith("error: unknown command 'show nonsense'")
    rc, _, err = ctl("/nonexistent/admin.sock", "show", "info")
    assert rc == 3 and "cannot connect" in err


def test_socket_permissions_stale_file_and_a_second_gateway(gateways, two_backends, tmp_path):
    g, sock = start(gateways, two_backends)
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    # A second gateway on the same socket path refuses to start.
    cfg2 = tmp_path / "two.toml"
    cfg2.write_text(config(sock, two_backends))
    p = subprocess.run([BINARY, "-c", str(cfg2)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert "another process answers on this admin socket" in p.stderr
    assert ok(sock, "show", "info")["pid"] == g.proc.pid, "the first one still answers"
    g.stop()
    assert not os.path.exists(sock), "the socket is removed at exit"

    # A stale socket file (its process died) is replaced.
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()
    assert os.path.exists(stale)
    group = grp.getgrgid(os.getgid()).gr_name
    g2 = Gateway(config(stale, two_backends,
                        extra_admin=f'socket_mode = "0660"\nsocket_group = "{group}"'))
    gateways.append(g2)
    wait_until(lambda: ok(stale, "show", "info")["pid"] == g2.proc.pid, what="answers")
    st = os.stat(stale)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == os.getgid()


def test_bad_socket_settings_are_config_errors(two_backends, tmp_path):
    sock = str(tmp_path / "a.sock")
    rc, out = run_check(config(sock, two_backends, extra_admin='socket_mode = "0666"'))
    assert rc == 2 and "lets every local user in" in out, out
    rc, out = run_check(config(sock, two_backends, extra_admin='socket_mode = "rw"'))
    assert rc == 2 and "is not an octal permission" in out, out
    rc, out = run_check(config("admin.sock", two_backends))
    assert rc == 2 and "must be an absolute path" in out, out
    rc, out = run_check(config("/tmp/" + "x" * 120, two_backends))
    assert rc == 2 and "longer than a Unix socket path" in out, out
    rc, out = run_check(config(sock, two_backends, extra_admin='socket_group = "no-such-grp"'))
    assert rc == 2 and "socket_group 'no-such-grp'" in out, out
    # A directory that does not exist: said at start-up, with the key's place.
    p = subprocess.run([BINARY, "-c", "/dev/stdin"], input=config(
        str(tmp_path / "missing" / "a.sock"), two_backends), capture_output=True, text=True,
        timeout=30)
    assert p.returncode == 2 and "cannot create the admin socket" in p.stdout + p.stderr


def test_drain_maint_weight_and_maxconn_steer_the_traffic(gateways, two_backends):
    a, b = two_backends
    g, sock = start(gateways, two_backends, balancer="weighted_round_robin", workers=1)

    def spread(n, path="/"):
        before = counts(two_backends)
        for i in range(n):
            assert get(g, f"{path}?i={i}") == 200
        after = counts(two_backends)
        return [after[k] - before[k] for k in range(2)]

    assert spread(10) == [5, 5]
    r = ok(sock, "set", "endpoint", "app", a.address, "state", "drain")
    assert r["endpoint"]["state"] == "drain" and r["was"]["state"] == "ready"
    assert spread(10) == [0, 10]
    ok(sock, "set", "endpoint", "app", a.address, "state", "maint")
    assert spread(4) == [0, 4]
    ok(sock, "set", "endpoint", "app", b.address, "state", "drain")
    assert get(g, "/none-left") == 503, "every endpoint out of service: 503"
    ok(sock, "set", "endpoint", "app", a.address, "state", "ready")
    ok(sock, "set", "endpoint", "app", b.address, "state", "ready")
    assert spread(10) == [5, 5]

    r = ok(sock, "set", "endpoint", "app", a.address, "weight", "3")
    assert r["endpoint"]["weight"] == 3 and r["endpoint"]["weight_source"] == "admin"
    assert spread(40) == [30, 10]
    ok(sock, "set", "endpoint", "app", a.address, "weight", "0")
    assert spread(5) == [0, 5]
    ok(sock, "set", "endpoint", "app", a.address, "weight", "default")
    assert spread(10) == [5, 5]
    rc, r, _ = ctl(sock, "set", "endpoint", "app", "127.0.0.1:1", "weight", "2")
    assert rc == 1 and "has no endpoint '127.0.0.1:1'" in r["error"]
    rc, r, _ = ctl(sock, "set", "endpoint", "app", a.address, "weight", "300")
    assert rc == 1 and "from 0 to 256" in r["error"]

    # maxconn 1: four slow requests run one at a time and queue; raising
    # the limit while they wait lets the waiters go at once.
    r = ok(sock, "set", "cluster", "app", "maxconn", "1")
    assert all(e["maxconn"] == 1 for e in r["endpoints"])
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(get, g, f"/sleep/1500?{i}") for i in range(4)]
        wait_until(lambda: ok(sock, "show", "stats")["clusters"][0]["queue"] >= 2,
                   what="requests queued behind maxconn 1")
        ok(sock, "set", "cluster", "app", "maxconn", "default")
        assert [f.result(timeout=30) for f in futs] == [200] * 4
    elapsed = time.monotonic() - t0
    assert elapsed < 4.5, f"queued requests were not woken when maxconn rose ({elapsed:.1f} s)"
    assert ok(sock, "show", "stats")["clusters"][0]["queue"] == 0


def test_runtime_settings_survive_reloads_unless_the_file_changes_them(gateways,
                                                                        two_backends):
    a, b = two_backends
    g, sock = start(gateways, two_backends, balancer="weighted_round_robin", workers=1)
    ok(sock, "set", "endpoint", "app", a.address, "state", "drain")
    ok(sock, "set", "endpoint", "app", b.address, "weight", "5")
    ok(sock, "set", "endpoint", "app", b.address, "maxconn", "9")
    g.reload()
    eps = ok(sock, "show", "endpoints")["endpoints"]
    assert eps[0]["state"] == "drain"
    assert (eps[1]["weight"], eps[1]["weight_source"]) == (5, "admin")
    assert (eps[1]["maxconn"], eps[1]["maxconn_source"]) == (9, "admin")
    # The file changes b's weight (not its maxconn): the file's weight wins.
    sock_text = open(g.config_path).read()
    g.reload(config(sock, two_backends, balancer="weighted_round_robin", weights={1: 2},
                    workers=1))
    assert sock_text != open(g.config_path).read()
    eps = ok(sock, "show", "endpoints")["endpoints"]
    assert (eps[1]["weight"], eps[1]["weight_source"]) == (2, "file")
    assert (eps[1]["maxconn"], eps[1]["maxconn_source"]) == (9, "admin")
    assert eps[0]["state"] == "drain", "the state is not in the file: it stays"
    assert "the file changed its weight: the admin setting gives way" in g.log()
    before = counts(two_backends)
    for i in range(4):
        assert get(g, f"/x{i}") == 200
    assert counts(two_backends)[0] == before[0], "still drained after two reloads"


def test_reload_through_the_admin_api(gateways, two_backends):
    g, sock = start(gateways, two_backends)
    r = ok(sock, "reload")
    assert r["generation"] == 2
    g.generation = 2
    g._wait_ready(2)
    good = open(g.config_path).read()
    g.write_config(good + "\n[[listener]]\nname = 42\n")
    rc, r, _ = ctl(sock, "reload")
    assert rc == 1 and "invalid configuration: keeping generation 2" in r["error"]
    assert any("gateway.toml:" in e for e in r["errors"]), r
    assert ok(sock, "show", "info")["generation"] == 2
    g.write_config(good)
    assert ok(sock, "reload")["generation"] == 3
    g.generation = 3
    g._wait_ready(3)  # port 0 binds anew
    assert get(g, "/after") == 200


def raw(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    return s


class Lines:
    """Reads reply lines (one JSON object each) from a socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def next(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            assert chunk, f"closed with {self.buf!r} pending"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def test_bad_clients_get_errors_and_never_stall_the_socket(gateways, two_backends):
    g, sock = start(gateways, two_backends)
    # Garbage, then a good command on the same connection; pipelined lines
    # are answered in order.
    s = raw(sock)
    s.sendall(b"\x00\xff\x1b[2J\n\n" + b"show info\nset endpoint\nshow endpoints\n")
    lines = Lines(s)
    replies = [lines.next() for _ in range(5)]
    assert [r["ok"] for r in replies] == [False, False, True, False, True]
    assert "only printable ASCII" in replies[0]["error"]
    assert "empty command" in replies[1]["error"]
    assert replies[2]["version"]
    assert "usage" in replies[3]["error"]
    assert replies[4]["endpoints"]
    # A last line without its newline, then the write side shut: answered.
    s.sendall(b"show info")
    s.shutdown(socket.SHUT_WR)
    assert lines.next()["pid"] == g.proc.pid
    s.close()

    # An endless line: an error, then the connection closes.
    s = raw(sock)
    s.sendall(b"x" * 5000)
    assert "longer than 4096 bytes" in Lines(s).next()["error"]
    assert s.recv(100) == b""
    s.close()

    # Sixteen idle clients hold every slot; the seventeenth is told so; the
    # socket serves again once they go.
    idle = [raw(sock) for _ in range(16)]
    time.sleep(0.2)
    extra = raw(sock)
    assert "too many admin connections" in Lines(extra).next()["error"]
    extra.close()
    for c in idle:
        c.close()
    wait_until(lambda: ctl(sock, "show", "info")[0] == 0, what="the socket serves again")

    # A client that asks and never reads, beside one that does.
    slow = raw(sock)
    slow.sendall(b"show stats\n" * 200)
    assert ok(sock, "show", "info")["pid"] == g.proc.pid
    slow.close()

    # Traffic never noticed.
    stop = threading.Event()
    errors = []

    def load():
        while not stop.is_set():
            try:
                assert get(g, "/during") == 200
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
                return

    t = threading.Thread(target=load)
    t.start()
    for _ in range(20):
        ok(sock, "show", "sessions", "verbose")
        ok(sock, "show", "latency")
    stop.set()
    t.join(30)
    assert not errors, errors
