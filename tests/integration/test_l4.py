"""L4 TCP load balancing through the real binary: relays, half-close,
balancing, health, maxconn queues, graceful shutdown, reload."""
import concurrent.futures
import re
import signal
import socket
import struct
import threading
import time

import pytest

from egwtest import (Gateway, TcpBackend, echo_handler, pattern, pattern_client, pattern_handler,
                     recv_all, send_pattern, wait_until, PatternChecker)


pytestmark = pytest.mark.usefixtures("clean_exit")


def l4_config(endpoints, balancer="round_robin", extra_cluster="", health="", global_extra="",
              listener_extra="", binds='"127.0.0.1:0"'):
    eps = ",\n  ".join(endpoints)
    return f"""
[global]
workers = 2
grace_period_ms = 10000
{global_extra}

[[listener]]
name = "tcp_in"
bind = {binds}
protocol = "tcp"
cluster = "app"
{listener_extra}

[[cluster]]
name = "app"
balancer = "{balancer}"
connect_timeout_ms = 1000
{extra_cluster}
endpoints = [
  {eps}
]
{health}
"""


def ep(backend, **kw):
    extra = "".join(f", {k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in kw.items())
    return f'{{ address = "{backend.address}"{extra} }}'


@pytest.mark.parametrize("path", ["splice", "copy", "copy-fallbacks"])
def test_relays_are_byte_exact_from_1_byte_to_100_mib_with_200_concurrent_connections(gateways, path):
    backend = TcpBackend(pattern_handler)
    # max_pipes = 0 turns splicing off: the copy path through provided
    # buffers; EGW_DISABLE forces the engine's fallbacks for older kernels
    # (one-shot recv and accept re-armed per completion, no bundles).
    env = {"EGW_DISABLE": "bundle,multishot_recv,multishot_accept"} if path == "copy-fallbacks" else {}
    g = Gateway(l4_config([ep(backend)], global_extra="" if path == "splice" else "max_pipes = 0"),
                env=env)
    path = "copy" if path.startswith("copy") else path
    gateways.append(g)
    addr = g.address("tcp_in")
    sizes = [0, 1, 2, 100, 1460, 16383, 16384, 16385, 65536, 100000, 1 << 20, 3 << 20]
    jobs = []
    for i in range(200):
        up = sizes[i % len(sizes)]
        down = sizes[(i * 7 + 3) % len(sizes)]
        jobs.append((up, down, 1000 + i))
    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        futures = [pool.submit(pattern_client, addr, up, down, seed) for up, down, seed in jobs]
        results = [f.result(timeout=120) for f in futures]
    for (up, down, seed), (got, bad) in zip(jobs, results):
        assert got == down and bad is None, f"download {down} (seed {seed}): got {got}, bad at {bad}"
    wait_until(lambda: len(getattr(backend, "results", [])) == len(jobs), 30, what="backend checks")
    bad_uploads = [r for r in backend.results if not r[1]]
    assert not bad_uploads, f"uploads that arrived wrong: {bad_uploads[:5]}"
    # One big transfer both ways at once.
    got, bad = pattern_client(addr, 100 << 20, 100 << 20, 7, timeout=120)
    assert got == 100 << 20 and bad is None
    wait_until(lambda: len(backend.results) == len(jobs) + 1, 30, what="100 MiB upload check")
    assert backend.results[-1][1], f"100 MiB upload arrived wrong: {backend.results[-1]}"
    assert g.stop() == 0
    relays = [int(n) for n in re.findall(rf"(\d+) {path} relays" if path == "copy" else
                                          r"(\d+) splice / \d+ copy relays", g.log())]
    assert sum(relays) == len(jobs) + 1, f"expected every session on the {path} path: {relays}"


def test_half_close_lets_the_response_flow_after_the_clients_fin(gateways):
    def handler(conn, backend):
        req = b""
        while True:
            d = conn.recv(65536)
            if not d:
                break
            req += d
        # The request is complete only at the client's FIN; answer after it.
        conn.sendall(b"got " + str(len(req)).encode() + b" bytes\n" + pattern(3, 0, 500000))
        conn.shutdown(socket.SHUT_WR)

    backend = TcpBackend(handler)
    g = Gateway(l4_config([ep(backend)]))
    gateways.append(g)
    s = socket.create_connection(g.address("tcp_in"), timeout=10)
    s.sendall(b"x" * 12345)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    assert data.startswith(b"got 12345 bytes\n")
    assert data[len(b"got 12345 bytes\n"):] == pattern(3, 0, 500000)
    s.close()


def test_weighted_round_robin_spreads_connections_by_weight(gateways):
    backends = [TcpBackend(echo_handler) for _ in range(3)]
    weights = [1, 2, 3]
    g = Gateway(l4_config([ep(b, weight=w) for b, w in zip(backends, weights)],
                          balancer="weighted_round_robin"))
    gateways.append(g)
    addr = g.address("tcp_in")
    n = 600
    for i in range(n):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        s.close()
    counts = [b.accepted for b in backends]
    assert sum(counts) == n
    for c, w in zip(counts, weights):
        expected = n * w / sum(weights)
        assert abs(c - expected) <= 0.05 * n, f"counts {counts} for weights {weights}"


def test_least_connections_and_source_hash_balancers(gateways):
    backends = [TcpBackend(echo_handler) for _ in range(3)]
    g = Gateway(l4_config([ep(b) for b in backends], balancer="source_hash"))
    gateways.append(g)
    addr = g.address("tcp_in")
    for _ in range(30):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        s.close()
    # Every connection comes from 127.0.0.1: one endpoint takes them all.
    assert sorted(b.accepted for b in backends) == [0, 0, 30]

    g.reload(l4_config([ep(b) for b in backends], balancer="least_connections",
                       binds=f'"127.0.0.1:{addr[1]}"'))
    held = []
    for _ in range(6):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"y")
        assert s.recv(1) == b"y"
        held.append(s)
    # Long-lived sessions spread evenly: 2 each.
    assert sorted(b.active for b in backends) == [2, 2, 2]
    for s in held:
        s.close()


def test_killed_endpoint_is_marked_down_clients_are_redispatched_and_it_comes_back(gateways):
    a = TcpBackend(echo_handler)
    b = TcpBackend(echo_handler)
    health = """[cluster.health_check]
type = "tcp"
interval_ms = 100
timeout_ms = 200
rise = 2
fall = 2
"""
    g = Gateway(l4_config([ep(a), ep(b)], extra_cluster="retries = 2\nredispatch = true",
                          health=health))
    gateways.append(g)
    addr = g.address("tcp_in")

    def roundtrip():
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b"hello")
        data = s.recv(5)
        s.close()
        return data == b"hello"

    assert all(roundtrip() for _ in range(10))
    a.stop()
    # While `a` is down every connection still succeeds (redispatch, then
    # health marks it down).
    assert all(roundtrip() for _ in range(50))
    wait_until(lambda: re.search(rf"endpoint app/{re.escape(a.address)} is DOWN", g.log()), 5,
               what="DOWN in the log")
    before = b.accepted
    assert all(roundtrip() for _ in range(20))
    assert b.accepted - before == 20, "a down endpoint still received connections"
    a.start()
    wait_until(lambda: re.search(rf"endpoint app/{re.escape(a.address)} is UP", g.log()), 5,
               what="UP in the log")
    a_before = a.accepted
    assert all(roundtrip() for _ in range(20))
    assert a.accepted > a_before, "the endpoint that came back gets no traffic"


def test_all_endpoints_down_closes_the_client_at_once_and_logs_why(gateways):
    a = TcpBackend(echo_handler)
    a.stop()
    g = Gateway(l4_config([ep(a)], extra_cluster="retries = 0"))
    gateways.append(g)
    addr = g.address("tcp_in")
    # First attempts fail on connect (passive marking after 3 failures).
    for _ in range(3):
        s = socket.create_connection(addr, timeout=5)
        assert s.recv(10) == b""
        s.close()
    t0 = time.monotonic()
    s = socket.create_connection(addr, timeout=5)
    assert s.recv(10) == b""
    assert time.monotonic() - t0 < 0.5
    wait_until(lambda: "no endpoint is up" in g.log(), 5, what="the reason in the log")


def test_maxconn_queues_sessions_and_the_queue_times_out(gateways):
    a = TcpBackend(echo_handler)
    g = Gateway(l4_config([ep(a, maxconn=2)], extra_cluster="queue_timeout_ms = 1500"),
                workers=1)
    gateways.append(g)
    addr = g.address("tcp_in")

    def connect_and_echo(msg):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(msg)
        return s

    s1 = connect_and_echo(b"1")
    s2 = connect_and_echo(b"2")
    assert s1.recv(1) == b"1" and s2.recv(1) == b"2"
    assert a.active == 2
    # A third waits in the queue: its bytes are not answered yet.
    s3 = connect_and_echo(b"3")
    s3.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s3.recv(1)
    assert a.accepted == 2
    # A slot frees: the queued session is served.
    s1.close()
    s3.settimeout(5)
    assert s3.recv(1) == b"3"
    assert a.accepted == 3
    # Full again; a fourth waits, then the queue timeout closes it.
    t0 = time.monotonic()
    s4 = connect_and_echo(b"4")
    s4.settimeout(5)
    try:
        # Closed with its "4" unread: the kernel answers with a reset.
        assert s4.recv(1) == b""
    except ConnectionResetError:
        pass
    waited = time.monotonic() - t0
    assert 1.3 < waited < 3.0, f"queue timeout after {waited:.2f}s, expected ~1.5s"
    assert a.accepted == 3
    for s in (s2, s3, s4):
        s.close()


def test_graceful_shutdown_finishes_transfers_in_flight(gateways):
    def slow_handler(conn, backend):
        conn.recv(1)
        # 8 MiB over about two seconds.
        for i in range(16):
            conn.sendall(pattern(9, i * 524288, 524288))
            time.sleep(0.12)
        conn.shutdown(socket.SHUT_WR)

    a = TcpBackend(slow_handler)
    g = Gateway(l4_config([ep(a)]))
    gateways.append(g)
    addr = g.address("tcp_in")
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"go")
    checker = PatternChecker(9)
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("n", recv_all(s, 1 << 30, checker)))
    t.start()
    time.sleep(0.4)
    g.proc.send_signal(signal.SIGTERM)
    # New connections are refused once draining has begun.
    def refused():
        try:
            c = socket.create_connection(addr, timeout=1)
            c.close()
            return False
        except OSError:
            return True
    wait_until(refused, 5, what="listener closed")
    t.join(20)
    assert got.get("n") == 8 << 20 and checker.bad_at is None
    assert g.proc.wait(20) == 0
    assert "draining 1 sessions" in g.log() or "draining" in g.log()


def test_sighup_changes_endpoints_without_dropping_an_established_connection(gateways):
    a = TcpBackend(echo_handler)
    b = TcpBackend(echo_handler)
    g = Gateway(l4_config([ep(a)]))
    gateways.append(g)
    addr = g.address("tcp_in")
    held = socket.create_connection(addr, timeout=5)
    held.sendall(b"before")
    assert held.recv(6) == b"before"
    assert a.accepted == 1
    # Same listener address (port resolved at start), new endpoint.
    host, port = addr
    g.reload(l4_config([ep(b)], binds=f'"127.0.0.1:{port}"'))
    assert g.address("tcp_in") == addr
    held.sendall(b"after")
    assert held.recv(5) == b"after", "the established session broke on reload"
    for _ in range(5):
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b"n")
        assert s.recv(1) == b"n"
        s.close()
    assert b.accepted == 5 and a.accepted == 1
    # An invalid file keeps the running configuration.
    g.reload("this is not toml [", expect_ok=False)
    assert "reload failed: keeping the running configuration" in g.log()
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"z")
    assert s.recv(1) == b"z"
    s.close()
    held.close()
    assert g.stop() == 0


def test_reload_that_removes_a_listener_closes_it(gateways):
    a = TcpBackend(echo_handler)
    two = l4_config([ep(a)]) + """
[[listener]]
name = "extra"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "app"
"""
    g = Gateway(two)
    gateways.append(g)
    main_addr = g.address("tcp_in")
    extra_addr = g.address("extra")
    g.reload(l4_config([ep(a)], binds=f'"127.0.0.1:{main_addr[1]}"'))

    def refused():
        try:
            socket.create_connection(extra_addr, timeout=1).close()
            return False
        except OSError:
            return True

    wait_until(refused, 5, what="the removed listener to refuse connections")
    s = socket.create_connection(main_addr, timeout=5)
    s.sendall(b"k")
    assert s.recv(1) == b"k"
    s.close()


def test_ipv6_listener_and_endpoint(gateways):
    try:
        b = TcpBackend(echo_handler, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    g = Gateway(l4_config([ep(b)], binds='["127.0.0.1:0", "[::1]:0"]'))
    gateways.append(g)
    host, port = g.address("tcp_in", 1)
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"v6")
    assert s.recv(2) == b"v6"
    s.close()
