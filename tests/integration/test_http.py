"""HTTP/1.1 reverse proxying through the real binary: routing, rewriting,
keep-alive, pipelining, streaming, limits and every rejection."""
import json
import re
import socket
import subprocess
import threading
import time

import pytest

from egwtest import Gateway, PatternChecker, pattern, wait_until
from httptest import (HttpBackend, Responses, WebSocketEchoBackend, http_exchange, read_to_eof,
                      status_of)


pytestmark = pytest.mark.usefixtures("clean_exit")


def http_config(backends, routes="", listener_extra="", cluster_extra="", health="",
                workers=1, default_cluster=True):
    eps = ", ".join(f'{{ address = "{b.address}" }}' for b in backends)
    cluster_line = 'cluster = "app"' if default_cluster else ""
    return f"""
[global]
workers = {workers}

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
{cluster_line}
{listener_extra}
{routes}

[[cluster]]
name = "app"
connect_timeout_ms = 1000
{cluster_extra}
endpoints = [ {eps} ]
{health}
"""


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode()


def url(g, path="/"):
    host, port = g.address("web")
    return f"http://{host}:{port}{path}"


def test_curl_get_through_the_proxy_and_a_local_route(gateways, backend):
    routes = """
[[listener.route]]
match = { path = "/healthz" }
respond = { status = 200, body = "ok\\n", headers = { "x-local" = "1" } }
"""
    g = Gateway(http_config([backend], routes))
    gateways.append(g)
    rc, out, err = curl("-i", url(g, "/healthz"))
    assert rc == 0, err
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"x-local: 1\r\n" in out and out.endswith(b"\r\n\r\nok\n")
    assert backend.requests == []  # answered locally
    rc, out, err = curl(url(g, "/hello"))
    assert rc == 0 and out == b"hello"
    assert backend.requests[-1].method == "GET" and backend.requests[-1].target == "/hello"


def test_forwarding_headers_and_hop_by_hop_fields(gateways, backend):
    routes = """
[[listener.route]]
match = { path_prefix = "/headers" }
cluster = "app"
request_headers = { set = { "x-env" = "prod" }, add = { "x-added" = "yes" }, remove = ["x-debug"] }
response_headers = { remove = ["x-remove-me"], set = { "x-served-by" = "egw" } }
"""
    g = Gateway(http_config([backend], routes))
    gateways.append(g)
    rc, out, err = curl("-i", "-H", "X-Debug: 1", "-H", "X-Env: dev", "-H", "Connection: keep-alive, X-Hop",
                        "-H", "X-Hop: secret", "-H", "Keep-Alive: timeout=5", "-H", "TE: trailers",
                        "-H", "X-Forwarded-For: 10.9.8.7", url(g, "/headers?q=1"))
    assert rc == 0, err
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"x-served-by: egw" in head and b"X-Remove-Me" not in head and b"X-Backend: yes" in head
    assert re.search(rb"Via: 1\.1 expressgateway", head)
    req = json.loads(body)
    names = [n.lower() for n, _ in req["headers"]]
    h = {}
    for n, v in req["headers"]:
        h.setdefault(n.lower(), []).append(v)
    assert req["target"] == "/headers?q=1"
    assert h["x-env"] == ["prod"] and h["x-added"] == ["yes"]
    assert "x-debug" not in names
    # Hop-by-hop fields and those named in Connection never reach the backend.
    for hop in ("x-hop", "keep-alive", "te", "connection"):
        assert hop not in names, hop
    assert h["x-forwarded-for"] == ["10.9.8.7", "127.0.0.1"]  # appended
    assert h["x-forwarded-proto"] == ["http"]
    assert h["via"] == ["1.1 expressgateway"]


def test_the_host_sent_upstream(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    addr = g.address("web")

    def upstream_head(raw):
        resp = http_exchange(addr, raw)
        assert status_of(resp) == 200, resp[:300]
        req = json.loads(resp.split(b"\r\n\r\n", 1)[1])
        return req, [v for n, v in req["headers"] if n.lower() == "host"]

    # HTTP/1.0 without Host: the HTTP/1.1 request upstream must carry one,
    # the endpoint's address.
    req, hosts = upstream_head(b"GET /headers HTTP/1.0\r\n\r\n")
    assert req["version"] == "HTTP/1.1"
    assert hosts == [backend.address]
    # HTTP/1.0 with a Host: kept.
    req, hosts = upstream_head(b"GET /headers HTTP/1.0\r\nHost: a.example\r\n\r\n")
    assert hosts == ["a.example"]
    # absolute-form: the target's authority replaces the Host field
    # (RFC 9112 §3.2.2), and the target goes upstream in origin-form.
    req, hosts = upstream_head(b"GET http://b.example:8080/headers?x=1 HTTP/1.1\r\n"
                               b"Host: wrong.example\r\nConnection: close\r\n\r\n")
    assert hosts == ["b.example:8080"] and req["target"] == "/headers?x=1"
    req, hosts = upstream_head(b"GET /headers HTTP/1.1\r\nHost: c.example\r\nConnection: close\r\n\r\n")
    assert hosts == ["c.example"]


def test_keep_alive_reuses_upstream_connections(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    host, port = g.address("web")
    s = socket.create_connection((host, port), timeout=10)
    r = Responses(s)
    for i in range(50):
        s.sendall(f"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, hdrs, body = r.next()
        assert status == 200 and body == b"hello"
    s.close()
    # Several client connections one after the other: still one upstream connection.
    for i in range(10):
        rc, out, _ = curl(url(g, f"/m/{i}"))
        assert out == b"hello"
    assert len(backend.requests) == 60
    assert backend.connections == 1, f"{backend.connections} upstream connections for 60 requests"


def test_backend_closing_is_never_reused(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    for i in range(5):
        rc, out, err = curl(url(g, "/close"))
        assert rc == 0 and out == b"closed", err
        rc, out, err = curl(url(g, "/after"))
        assert rc == 0 and out == b"hello", err
    # Every /close consumed its connection: /after went over a fresh one.
    assert backend.connections >= 5


def test_an_upstream_connection_paused_by_a_slow_client_is_reused_cleanly(gateways, backend):
    # The client reads late, so the proxy pauses the upstream connection
    # (back-pressure) and the response ends while it is paused; the pooled
    # connection must read the next response all the same.
    g = Gateway(http_config([backend], cluster_extra="retries = 0"))
    gateways.append(g)
    n = 4 << 20
    for round_no in range(3):
        s = socket.create_connection(g.address("web"), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(f"GET /size/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)  # let the proxy's queue to us fill up
        r = Responses(s)
        status, _, body = r.next()
        assert status == 200 and len(body) == n
        s.close()
    assert backend.connections == 1  # one pooled upstream connection served all three
    rc, out, err = curl(url(g, "/after"))
    assert rc == 0 and out == b"hello", err


def test_a_bad_request_behind_good_ones_gets_its_400_after_their_answers(gateways, backend):
    routes = """
[[listener.route]]
match = { path = "/local" }
respond = { status = 200, body = "local" }
"""
    g = Gateway(http_config([backend], routes=routes))
    gateways.append(g)
    # Answered locally and by the backend, then a request line that is not
    # one: every good request keeps its response, the bad one gets a 400,
    # then the connection closes.
    for first in (b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n"):
        s = socket.create_connection(g.address("web"), timeout=10)
        s.sendall(first + first + b"k\r\n\r\n")
        r = Responses(s)
        assert r.next()[0] == 200
        assert r.next()[0] == 200
        assert r.next()[0] == 400
        s.settimeout(5)
        assert s.recv(100) == b""
        s.close()


def test_pipelined_requests_are_answered_in_order_without_desync(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    addr = g.address("web")
    reqs = b""
    expected = []
    for i in range(10):
        if i % 3 == 1:
            body = pattern(5, i * 1000, 300 + i)
            reqs += (f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + body)
            expected.append(("echo", len(body)))
        elif i % 3 == 2:
            reqs += (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n")
            expected.append(("echo", 8))
        else:
            reqs += f"GET /p/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            expected.append(("get", i))
    s = socket.create_connection(addr, timeout=10)
    s.sendall(reqs)  # all at once
    r = Responses(s)
    for kind, v in expected:
        status, _, body = r.next()
        assert status == 200
        if kind == "echo":
            assert json.loads(body)["len"] == v
        else:
            assert body == b"hello"
    s.close()
    got = [(q.method, q.target, q.body_len) for q in backend.requests]
    want = []
    for i, (kind, v) in enumerate(expected):
        want.append(("POST", "/echo", v) if kind == "echo" else ("GET", f"/p/{i}", 0))
    assert got == want


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_100_mib_upload_and_download_byte_exact(gateways, backend, framing, tmp_path):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    size = 100 << 20
    data = tmp_path / "up.bin"
    with open(data, "wb") as f:
        off = 0
        while off < size:
            f.write(pattern(7, off, 1 << 20))
            off += 1 << 20
    import hashlib
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    args = ["--data-binary", f"@{data}", "-H", "Content-Type: application/octet-stream"]
    if framing == "chunked":
        args += ["-H", "Transfer-Encoding: chunked"]
    rc, out, err = curl(*args, url(g, "/echo"), timeout=120)
    assert rc == 0, err
    res = json.loads(out)
    assert res["len"] == size and res["sha256"] == digest
    # Download.
    path = f"/chunked/{size}" if framing == "chunked" else f"/size/{size}"
    dl = tmp_path / "down.bin"
    rc, out, err = curl("-o", str(dl), url(g, path), timeout=120)
    assert rc == 0, err
    c = PatternChecker(1)
    with open(dl, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            c.feed(chunk)
    assert c.offset == size and c.bad_at is None


def test_response_trailers_head_204_304_and_1xx(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    s = socket.create_connection(g.address("web"), timeout=10)
    r = Responses(s)
    s.sendall(b"GET /chunked/100 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, body = r.next()
    assert status == 200 and body == pattern(1, 0, 100)
    s.sendall(b"HEAD /size/1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, body = r.next(head=True)
    assert status == 200 and hdrs["content-length"] == "1000"
    for code in (204, 304):
        s.sendall(f"GET /status/{code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, hdrs, body = r.next()
        assert status == code and body == b""
    s.sendall(b"GET /status/103 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = r.next()
    assert status == 103  # interim response forwarded
    status, _, body = r.next()
    assert status == 200 and body == b"final"
    # The connection still works after all of that.
    s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.next()[2] == b"hello"
    s.close()
    # Trailers reach the client through curl (raw chunked view).
    rc, out, err = curl("--raw", "-i", url(g, "/chunked/10"))
    assert b"x-checksum: done" in out


def test_expect_100_continue_and_request_trailers(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    s = socket.create_connection(g.address("web"), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = Responses(s)
    status, _, _ = r.next()
    assert status == 100
    s.sendall(b"hello")
    status, _, body = r.next()
    assert status == 200 and json.loads(body)["len"] == 5
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"4\r\nabcd\r\n0\r\nX-Sum: 42\r\n\r\n")
    status, _, body = r.next()
    assert status == 200
    res = json.loads(body)
    assert res["len"] == 4 and res["trailers"] == [["X-Sum", "42"]]
    s.close()


REJECTIONS = [
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3 3\r\n\r\nabc", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    # chunked not final: the length cannot be known (RFC 9112 6.3): 400
    (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    # a coding we do not implement before the final chunked: 501
    (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\nHost: a\n\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\rX\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400),
    (b"G(T /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /x y HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET /x HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    (b"GET /x\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET /x HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 20000 + b"\r\n\r\n", 431),
    (b"GET /%2e%2e/etc HTTP/1.1\r\nHost: a\r\n\r\n", 400),
]


@pytest.mark.parametrize("raw, expected", REJECTIONS, ids=[str(i) for i in range(len(REJECTIONS))])
def test_malformed_requests_are_rejected_and_the_backend_sees_nothing(gateways, backend, raw,
                                                                      expected):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    resp = http_exchange(g.address("web"), raw)
    assert status_of(resp) == expected, resp[:200]
    assert b"Connection: close" in resp
    # Short generic body, nothing internal.
    body = resp.split(b"\r\n\r\n", 1)[1]
    assert len(body) < 64
    time.sleep(0.05)
    assert backend.requests == [] and backend.connections == 0


def test_body_limits_and_slow_clients(gateways, backend):
    g = Gateway(http_config([backend], listener_extra="""
max_body_bytes = 1000
http_request_timeout_ms = 500
min_request_body_rate = 1000
body_rate_window_ms = 500
"""))
    gateways.append(g)
    addr = g.address("web")
    resp = http_exchange(addr, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
    assert status_of(resp) == 413
    resp = http_exchange(addr, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"400\r\n" + b"a" * 1024 + b"\r\n")
    assert status_of(resp) == 413
    # Slowloris: half a head, then nothing.
    t0 = time.monotonic()
    resp = http_exchange(addr, b"GET /x HTTP/1.1\r\nHost: a\r\n")
    assert status_of(resp) == 408 and time.monotonic() - t0 < 3
    # Slow POST: a body that trickles in below the minimum rate.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\nabc")
    t0 = time.monotonic()
    resp = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            resp += d
    except (ConnectionResetError, socket.timeout):
        pass
    assert status_of(resp) == 408, resp
    assert time.monotonic() - t0 < 3
    assert backend.requests == []  # the truncated body never completed upstream


def test_first_request_after_a_quiet_spell_gets_its_full_timeout(gateways, backend):
    # Nothing wakes the worker while it is idle: the request-head timeout
    # armed for the next connection must count from its arrival (a stale
    # clock made it expire at once: 408 before the head was read).
    g = Gateway(http_config([backend], listener_extra="http_request_timeout_ms = 1000"))
    gateways.append(g)
    addr = g.address("web")
    for _ in range(2):
        time.sleep(1.5)
        resp = http_exchange(addr, [b"GET /quiet HTTP/1.1\r\nHost: a\r\n",
                                    b"Connection: close\r\n\r\n"], pause=0.1)
        assert status_of(resp) == 200, resp[:200]


def test_a_client_that_announced_its_close_is_not_waited_for(gateways, backend):
    # Connection: close from the client: once the response and the FIN are
    # out, the gateway lets go of the socket at once (no lingering for the
    # client's FIN). The client, still holding its end, reads the whole
    # response and then EOF; the gateway's end is orphaned in FIN-WAIT (1
    # until the client's delayed ACK, then 2).
    g = Gateway(http_config([backend]))
    gateways.append(g)
    addr = g.address("web")
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /announced HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    resp = read_to_eof(s)
    assert status_of(resp) == 200 and resp.endswith(b"hello")
    client_port = s.getsockname()[1]

    def gateway_end():
        out = subprocess.run(["ss", "-tanpH", f"( sport = :{addr[1]} and dport = :{client_port} )"],
                             capture_output=True, text=True, timeout=10).stdout
        return out.strip()

    # Well inside the 2 s linger that a close the client did not announce gets.
    wait_until(lambda: gateway_end() and "expressgateway" not in gateway_end(), 1.5,
               what="the gateway to close its end without waiting for the client's FIN")
    assert gateway_end().startswith("FIN-WAIT-"), gateway_end()
    s.close()
    # A keep-alive client is still answered on the same connection.
    s = socket.create_connection(addr, timeout=10)
    for i in range(2):
        s.sendall(f"GET /ka{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        got = b""
        while not got.endswith(b"hello"):
            d = s.recv(65536)
            assert d, "closed"
            got += d
    s.close()


def test_errors_502_503_504_and_retries(gateways, backend):
    dead = HttpBackend()
    dead.stop()
    routes = """
[[listener.route]]
match = { path_prefix = "/dead" }
cluster = "dead"
[[listener.route]]
match = { path_prefix = "/sleep" }
cluster = "slow"
"""
    cfg = http_config([dead, backend], routes, cluster_extra="retries = 2") + f"""
[[cluster]]
name = "dead"
retries = 1
endpoints = [ {{ address = "{dead.address}" }} ]
[[cluster]]
name = "slow"
server_idle_timeout_ms = 500
endpoints = [ {{ address = "{backend.address}" }} ]
"""
    g = Gateway(cfg)
    gateways.append(g)
    # A dead endpoint in "app" is retried on the live one: all succeed.
    for i in range(10):
        rc, out, err = curl(url(g, f"/ok/{i}"))
        assert out == b"hello", (out, err)
    # A cluster with only a dead endpoint: 502, then 503 once it is marked down.
    codes = set()
    for _ in range(6):
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/dead"))
        codes.add(out)
    assert b"502" in codes and b"503" in codes, codes
    # An endpoint slower than the server timeout: 504.
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/sleep/1500"))
    assert out == b"504"


def test_no_route_and_no_default_cluster_is_404(gateways, backend):
    routes = """
[[listener.route]]
match = { host = "api.example.com" }
cluster = "app"
"""
    g = Gateway(http_config([backend], routes, default_cluster=False))
    gateways.append(g)
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/x"))
    assert out == b"404"
    rc, out, err = curl("-H", "Host: API.example.com:8080", url(g, "/x"))
    assert out == b"hello"


def test_websocket_echo_through_the_proxy_outlives_the_request_timeouts(gateways):
    import asyncio
    import websockets

    backend = WebSocketEchoBackend()
    g = Gateway(http_config([backend], listener_extra="""
http_request_timeout_ms = 300
keep_alive_timeout_ms = 300
client_idle_timeout_ms = 300
tunnel_timeout_ms = 5000
"""))
    gateways.append(g)
    host, port = g.address("web")

    async def client():
        async with websockets.connect(f"ws://{host}:{port}/chat") as ws:
            await ws.send("first")
            assert await ws.recv() == "first"
            # Idle well past the request, keep-alive and client idle timeouts.
            await asyncio.sleep(1.2)
            await ws.send(b"\x00binary\xff" * 1000)
            assert await ws.recv() == b"\x00binary\xff" * 1000
            for i in range(100):
                await ws.send(f"m{i}")
            for i in range(100):
                assert await ws.recv() == f"m{i}"

    try:
        asyncio.run(asyncio.wait_for(client(), 20))
    finally:
        backend.stop()


def test_tunnel_idle_timeout_closes_it(gateways):
    # A raw Upgrade to a backend that accepts it, then silence.
    import socket as so

    lst = so.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)

    def upstream():
        c, _ = lst.accept()
        c.recv(65536)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nhi")
        time.sleep(5)
        c.close()

    threading.Thread(target=upstream, daemon=True).start()

    class Addr:
        address = f"127.0.0.1:{lst.getsockname()[1]}"

    g = Gateway(http_config([Addr()], listener_extra="tunnel_timeout_ms = 500"))
    gateways.append(g)
    s = so.create_connection(g.address("web"), timeout=10)
    s.sendall(b"GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n")
    data = b""
    t0 = time.monotonic()
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    assert data.startswith(b"HTTP/1.1 101") and data.endswith(b"hi")
    assert 0.4 < time.monotonic() - t0 < 3


def test_http_health_checks_follow_the_endpoint(gateways):
    good = HttpBackend()
    sick = HttpBackend()
    health = """[cluster.health_check]
type = "http"
path = "/status/500"
interval_ms = 100
timeout_ms = 500
rise = 1
fall = 1
"""
    # The check path answers 500 on both: both go down, and clients get 503.
    g = Gateway(http_config([good, sick], health=health))
    gateways.append(g)
    wait_until(lambda: g.log().count("is DOWN") >= 2, 5, what="both endpoints down")
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/x"))
    assert out == b"503"
    # Point the check at a healthy path: they come back.
    host, port = g.address("web")
    cfg = http_config([good, sick], health=health.replace("/status/500", "/healthy")).replace(
        'bind = "127.0.0.1:0"', f'bind = "127.0.0.1:{port}"')
    g.reload(cfg)
    wait_until(lambda: g.log().count("is UP") >= 2, 5, what="both endpoints up")
    rc, out, err = curl(url(g, "/x"))
    assert out == b"hello"
    checks = [r for r in good.requests if r.target == "/healthy"]
    assert checks and checks[0].method == "GET"
    good.stop()
    sick.stop()


def test_wrk_keep_alive_load_has_no_errors(gateways, backend):
    g = Gateway(http_config([backend], workers=2))
    gateways.append(g)
    p = subprocess.run(["wrk", "-t1", "-c16", "-d2s", url(g, "/w")], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0
    m = re.search(r"(\d+) requests in", p.stdout)
    assert m and int(m.group(1)) > 100
    assert "Non-2xx" not in p.stdout and "Socket errors" not in p.stdout, p.stdout


def test_reset_before_the_response_is_retried_only_for_idempotent_requests(gateways, backend):
    g = Gateway(http_config([backend], cluster_extra="retries = 2"))
    gateways.append(g)
    # GET: the backend resets every attempt; the proxy tries 1 + retries times, then 502.
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/reset"))
    assert out == b"502"
    assert backend.resets == 3, f"{backend.resets} attempts for an idempotent request"
    # POST with a body: never replayed.
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "abc",
                        url(g, "/reset"))
    assert out == b"502"
    assert backend.resets == 4, "a POST was replayed"


def test_stale_pooled_connection_is_replaced_transparently(gateways, backend):
    # The backend closes idle keep-alive connections behind the proxy's back:
    # the next request must not fail.
    g = Gateway(http_config([backend]))
    gateways.append(g)
    for i in range(5):
        rc, out, err = curl(url(g, f"/a/{i}"))
        assert out == b"hello"
        # Kill the backend's side of every idle connection.
        with backend.tcp.lock:
            conns = list(backend.tcp.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(0.05)
    assert backend.connections >= 5


def test_sigusr1_logs_counters_and_latency_by_phase(gateways, backend):
    import signal as sig
    g = Gateway(http_config([backend]))
    gateways.append(g)
    for i in range(20):
        rc, out, err = curl(url(g, f"/l/{i}"))
        assert out == b"hello"
    g.proc.send_signal(sig.SIGUSR1)
    wait_until(lambda: "latency cluster app total" in g.log(), 5, what="latency dump")
    log = g.log()
    m = re.search(r"latency listener web accept_to_headers: n=(\d+) p50=(\d+)us", log)
    assert m and int(m.group(1)) == 20
    m = re.search(r"latency cluster app ttfb: n=(\d+)", log)
    assert m and int(m.group(1)) == 20
    m = re.search(r"latency cluster app connect: n=(\d+)", log)
    assert m and int(m.group(1)) == backend.connections
    assert re.search(r"worker 0 stats: \d+ sessions accepted", log)
    assert re.search(r"http: 20 requests", log)


def test_drain_closes_idle_keep_alive_and_finishes_requests_in_flight(gateways, backend):
    import signal as sig
    g = Gateway(http_config([backend]))
    gateways.append(g)
    addr = g.address("web")
    idle = socket.create_connection(addr, timeout=10)
    idle.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert Responses(idle).next()[2] == b"hello"
    busy = socket.create_connection(addr, timeout=10)
    busy.sendall(b"GET /sleep/800 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    t0 = time.monotonic()
    g.proc.send_signal(sig.SIGTERM)
    status, hdrs, body = Responses(busy).next()
    assert status == 200 and body == b"hello"
    assert hdrs.get("connection") == "close"  # the last response says so
    assert idle.recv(10) == b""  # the idle keep-alive connection was closed
    assert g.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5
