"""HTTP/2 toward the endpoints (a cluster with protocol = "h2"): nghttpd
(nghttp2-server) and a python3-h2 origin behind the gateway, HTTP/1.1 and
HTTP/2 clients in front; the request as the origin sees it, trailers both
ways, multiplexing on few connections, GOAWAY and REFUSED_STREAM with
nothing lost, malformed responses, cancels, the idle PING check, ALPN over
TLS and HTTP/2 health checks."""
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from egwtest import Gateway, pattern, run_check, wait_until
from h2backend import H2Backend
from h2test import H2Client
from httptest import http_exchange, status_of
from test_http import http_config
from tlstest import Pki


pytestmark = pytest.mark.usefixtures("clean_exit")


def h2_config(backend, cluster_extra="", listener_extra="", health=""):
    # http_config writes its own connect_timeout_ms: only the protocol here.
    return http_config([backend], cluster_extra='protocol = "h2"\n' + cluster_extra,
                       listener_extra=listener_extra, health=health)


@pytest.fixture
def origin():
    b = H2Backend()
    yield b
    b.stop()


@pytest.fixture
def gw(gateways, origin):
    g = Gateway(h2_config(origin))
    gateways.append(g)
    return g


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode()


def url(g, path):
    host, port = g.address("web")
    return f"http://{host}:{port}{path}"


def echo(g, *curl_args):
    rc, out, err = curl(*curl_args, url(g, "/echo"))
    assert rc == 0, err
    return json.loads(out)


# --- the request as the origin sees it ---------------------------------------------------------

def test_http11_client_to_h2_origin_request_mapping(gw, origin):
    seen = echo(gw, "-H", "Host: app.example", "-H", "X-Custom: one", "-H",
                "Connection: keep-alive, X-Hop", "-H", "X-Hop: secret", "-H", "TE: trailers",
                "-H", "Keep-Alive: timeout=5")
    assert seen["method"] == "GET"
    assert seen["authority"] == "app.example"
    assert seen["scheme"] == "http"
    names = [n for n, _ in seen["headers"]]
    assert all(n == n.lower() for n in names), names
    h = dict(seen["headers"])
    assert h["x-custom"] == "one"
    assert "host" not in h                      # became :authority
    for hop in ("connection", "keep-alive", "x-hop", "upgrade", "transfer-encoding"):
        assert hop not in h, hop
    assert h["te"] == "trailers"                # the one TE value HTTP/2 carries
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert "via" in h


def test_bodies_both_ways_byte_exact(gw, origin):
    body = os.urandom(3 * 1024 * 1024 + 17)
    # A Content-Length upload from an HTTP/1.1 client.
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-X", "POST", "--data-binary", "@-",
                        url(gw, "/echo")], input=body, capture_output=True, timeout=30)
    seen = json.loads(p.stdout)
    assert seen["body_len"] == len(body)
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()
    assert dict(seen["headers"])["content-length"] == str(len(body))
    # A chunked upload: no content-length toward the origin, the same bytes.
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-X", "POST", "-H",
                        "Transfer-Encoding: chunked", "--data-binary", "@-", url(gw, "/echo")],
                       input=body, capture_output=True, timeout=30)
    seen = json.loads(p.stdout)
    assert seen["body_sha"] == hashlib.sha256(body).hexdigest()
    assert "content-length" not in dict(seen["headers"])
    # Downloads, with and without content-length; the HTTP/1.1 client gets
    # chunked for the second.
    n = 5 * 1024 * 1024 + 3
    for path in (f"/bytes?n={n}", f"/stream?n={n}"):
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "/tmp/egw-h2dl",
                            url(gw, path)], capture_output=True, timeout=30)
        with open("/tmp/egw-h2dl", "rb") as f:
            assert f.read() == pattern(3, 0, n), path
        head = p.stdout.decode().lower()
        if path.startswith("/stream"):
            assert "transfer-encoding: chunked" in head, head
        else:
            assert f"content-length: {n}" in head, head
    os.unlink("/tmp/egw-h2dl")


def test_trailers_both_ways(gw, origin):
    # HTTP/2 client with request trailers -> the origin sees them.
    c = H2Client(gw.address("web"))
    sid = c.request("/echo", method="POST", body=b"abc", end=False,
                    headers=[("te", "trailers")])
    c.conn.send_headers(sid, [("x-req-trailer", "t1")], end_stream=True)
    c.flush()
    s = c.wait(sid)
    assert s.status == 200
    seen = json.loads(bytes(s.data))
    assert seen["trailers"] == [["x-req-trailer", "t1"]]
    # Response trailers reach an HTTP/2 client...
    s = c.wait(c.request("/trailers"))
    assert bytes(s.data) == b"body-with-trailers"
    assert dict(s.trailers) == {"x-checksum": "abc123", "x-status": "0"}
    c.close()
    # ... and a chunked HTTP/1.1 one.
    resp = http_exchange(gw.address("web"), b"GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n"
                                            b"Connection: close\r\n\r\n")
    assert b"x-checksum: abc123" in resp.lower(), resp


def test_multiplexed_on_few_connections(gateways, origin):
    g = Gateway(h2_config(origin, cluster_extra="h2_max_connections = 2"))
    gateways.append(g)
    c = H2Client(g.address("web"))
    sids = [c.request(f"/slow?ms=300&i={i}") for i in range(40)]
    for sid in sids:
        s = c.wait(sid)
        assert s.status == 200 and bytes(s.data) == b"slow"
    c.close()
    # Forty concurrent requests: at most two connections, many streams on one.
    assert origin.connections <= 2, origin.connections
    assert origin.max_open >= 10, origin.max_open
    # h2load through both front protocols: every request answered.
    host, port = g.address("web")
    for extra in ([], ["--h1"]):
        p = subprocess.run(["h2load", "-n", "2000", "-c", "8", "-m", "10", *extra,
                            f"http://{host}:{port}/x"], capture_output=True, text=True,
                           timeout=60)
        assert "2000 succeeded" in p.stdout and "2000 2xx" in p.stdout, p.stdout[-1500:]
    assert origin.connections <= 4, origin.connections


def test_windows_toward_the_endpoint_are_configuration(gateways, origin):
    # Defaults: 1 MiB per stream, 16 MiB per connection.
    g = Gateway(h2_config(origin))
    gateways.append(g)
    c = H2Client(g.address("web"))
    assert c.wait(c.request("/x")).status == 200
    c.close()
    assert origin.client_windows[-1] == (1 << 20, 16 << 20), origin.client_windows
    g.stop()
    # Configured: a 64 KiB stream window and a 256 KiB connection window,
    # and a 1 MiB body still arrives whole through them.
    g2 = Gateway(h2_config(origin, cluster_extra="h2_initial_window_bytes = 65536\n"
                                                  "h2_connection_window_bytes = 262144"))
    gateways.append(g2)
    c = H2Client(g2.address("web"))
    s = c.wait(c.request(f"/bytes?n={1 << 20}"))
    assert s.status == 200 and bytes(s.data) == pattern(3, 0, 1 << 20)
    c.close()
    assert origin.client_windows[-1] == (65536, 262144), origin.client_windows


def test_connection_request_cap_and_age(gateways, origin):
    g = Gateway(h2_config(origin, cluster_extra="h2_max_requests_per_connection = 3"))
    gateways.append(g)
    for i in range(7):
        assert curl(url(g, f"/r{i}"))[1] == f"ok /r{i}".encode()
    assert origin.connections == 3, origin.connections  # 3 + 3 + 1
    g2 = Gateway(h2_config(origin, cluster_extra="h2_max_connection_age_ms = 300"))
    gateways.append(g2)
    before = origin.connections
    assert curl(url(g2, "/a"))[1] == b"ok /a"
    assert curl(url(g2, "/b"))[1] == b"ok /b"
    time.sleep(0.5)
    assert curl(url(g2, "/c"))[1] == b"ok /c"
    assert origin.connections - before == 2, origin.connections - before


# --- nothing lost: GOAWAY and REFUSED_STREAM ---------------------------------------------------

def test_goaway_with_requests_in_flight_loses_none(gateways):
    origin = H2Backend(goaway_after=6)
    try:
        g = Gateway(h2_config(origin))
        gateways.append(g)
        c = H2Client(g.address("web"))
        # Five GETs and a POST: all six are answered, one by the first
        # connection, five (the POST too: they were refused unprocessed)
        # after their retry on another one.
        sids = [c.request(f"/echo?i={i}") for i in range(5)]
        sids.append(c.request("/echo?i=post", method="POST"))
        for sid in sids:
            s = c.wait(sid)
            assert s.status == 200, (s.status, s.reset, g.log()[-2000:])
        paths = sorted(json.loads(bytes(c.streams[sid].data))["path"] for sid in sids)
        assert paths == sorted([f"/echo?i={i}" for i in range(5)] + ["/echo?i=post"])
        assert origin.connections == 2
        c.close()
        g.stop()
        assert "5 refused and sent again" in g.log(), g.log()[-3000:]
    finally:
        origin.stop()


def test_refused_stream_is_sent_again(gw, origin):
    rc, out, err = curl("-X", "POST", "-d", "", url(gw, "/refuse-once"))
    assert rc == 0 and out == b"second time", (out, err)


# --- failures -------------------------------------------------------------------------------------

def test_malformed_and_reset_responses_are_502(gw, origin):
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(gw, "/bad-header"))
    assert out == b"502", out
    rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x",
                        url(gw, "/reset"))
    assert out == b"502", out
    # The connection to the origin still serves.
    rc, out, err = curl(url(gw, "/fine"))
    assert out == b"ok /fine"


def test_client_cancel_resets_the_upstream_stream(gw, origin):
    c = H2Client(gw.address("web"))
    sid = c.request("/slow?ms=2000")
    wait_until(lambda: any(r.header(":path") == "/slow?ms=2000" for r in origin.requests),
               what="the request reached the origin")
    c.conn.reset_stream(sid, error_code=8)
    c.flush()
    wait_until(lambda: any(code == 8 for _, _, code in origin.resets), timeout=5,
               what="the origin saw CANCEL")
    s = c.wait(c.request("/after"))
    assert s.status == 200 and bytes(s.data) == b"ok /after"
    assert origin.connections == 1
    c.close()


def test_quiet_connection_is_pinged_before_reuse(gateways):
    # The origin's first connection goes deaf after one response (it reads
    # nothing more, PINGs included): the next request waits for the PING,
    # gives up on that connection and goes on a new one.
    origin = H2Backend(deaf_after_first=True)
    try:
        g = Gateway(h2_config(origin, cluster_extra="h2_ping_idle_ms = 200"))
        gateways.append(g)
        assert curl(url(g, "/one"))[1] == b"ok /one"
        time.sleep(0.4)
        t0 = time.monotonic()
        assert curl(url(g, "/two"))[1] == b"ok /two"
        assert time.monotonic() - t0 < 5
        assert origin.connections >= 2
    finally:
        origin.stop()


def test_websocket_and_connect_to_an_h2_cluster_are_501(gw):
    resp = http_exchange(gw.address("web"), b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                                            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert status_of(resp) == 501, resp[:200]


# --- real peers: nghttpd, cleartext and TLS ---------------------------------------------------------

@pytest.fixture
def nghttpd_root(tmp_path):
    if not shutil.which("nghttpd"):
        pytest.skip("nghttpd (nghttp2-server) is not installed")
    root = tmp_path / "www"
    root.mkdir()
    (root / "big").write_bytes(pattern(9, 0, 10 * 1024 * 1024))
    (root / "index.html").write_bytes(b"hello from nghttpd\n")
    return root


def start_nghttpd(root, *tls):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    args = ["nghttpd", "-d", str(root), "--address=127.0.0.1"]
    args += [str(port), *tls] if tls else ["--no-tls", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, what="nghttpd listening")
    return proc, port


class Addr:
    def __init__(self, port):
        self.address = f"127.0.0.1:{port}"


def test_nghttpd_origin_cleartext(gateways, nghttpd_root):
    proc, port = start_nghttpd(nghttpd_root)
    try:
        g = Gateway(h2_config(Addr(port)))
        gateways.append(g)
        want = hashlib.sha256((nghttpd_root / "big").read_bytes()).hexdigest()
        for front in (["--http1.1"], ["--http2-prior-knowledge"]):
            p = subprocess.run(["curl", "-sS", "--max-time", "30", *front, url(g, "/big")],
                               capture_output=True, timeout=40)
            assert hashlib.sha256(p.stdout).hexdigest() == want, front
        host, gport = g.address("web")
        p = subprocess.run(["h2load", "-n", "5000", "-c", "4", "-m", "10",
                            f"http://{host}:{gport}/index.html"], capture_output=True, text=True,
                           timeout=60)
        assert "5000 succeeded" in p.stdout and "5000 2xx" in p.stdout, p.stdout[-1500:]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_nghttpd_origin_over_tls_with_alpn_h2_and_h2_health_checks(gateways, nghttpd_root):
    pki = Pki()
    leaf = pki.make_leaf("origin", "origin.test", ["origin.test"])
    proc, port = start_nghttpd(nghttpd_root, leaf["key"], leaf["cert"])
    try:
        tls = (f'[cluster.tls]\nca_file = "{pki.ca["cert"]}"\nsni = "origin.test"\n')
        health = ('[cluster.health_check]\ntype = "http"\npath = "/index.html"\n'
                  'interval_ms = 200\nfall = 1\nrise = 1\n')
        g = Gateway(h2_config(Addr(port), cluster_extra="", health=health + tls),
                    log_level="debug")
        gateways.append(g)
        rc, out, err = curl(url(g, "/index.html"))
        assert out == b"hello from nghttpd\n", err
        # The health check speaks HTTP/2 as well: a missing path is a 404, so
        # the endpoint goes down and requests get 503.
        g.write_config(h2_config(Addr(port), health=health.replace("/index.html", "/missing") +
                                 tls))
        g.reload()
        wait_until(lambda: "is DOWN (health check: status 404" in g.log(), timeout=10,
                   what="the HTTP/2 check saw 404")
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/index.html"))
        assert out == b"503"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        pki.cleanup()


def test_tls_origin_sessions_are_resumed(gateways, nghttpd_root):
    pki = Pki()
    leaf = pki.make_leaf("origin", "origin.test", ["origin.test"])
    proc, port = start_nghttpd(nghttpd_root, leaf["key"], leaf["cert"])
    try:
        # One stream per connection: every request makes a new connection,
        # and each after the first offers the session the last one saved.
        tls = f'[cluster.tls]\nca_file = "{pki.ca["cert"]}"\nsni = "origin.test"\n'
        g = Gateway(h2_config(Addr(port), cluster_extra="h2_max_requests_per_connection = 1",
                              health=tls))
        gateways.append(g)
        for i in range(3):
            assert curl(url(g, "/index.html"))[1] == b"hello from nghttpd\n"
        g.stop()
        m = re.search(r"upstream: (\d+) handshakes \((\d+) resumed\)", g.log())
        assert m and int(m.group(1)) == 3 and int(m.group(2)) == 2, g.log()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        pki.cleanup()


def test_tls_origin_that_refuses_h2_in_alpn(gateways):
    pki = Pki()
    leaf = pki.make_leaf("origin", "origin.test", ["origin.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf["cert"], leaf["key"])
    ctx.set_alpn_protocols(["http/1.1"])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            try:
                t = ctx.wrap_socket(c, server_side=True)
                t.recv(100)
                t.close()
            except OSError:
                c.close()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        tls = f'[cluster.tls]\nca_file = "{pki.ca["cert"]}"\nsni = "origin.test"\n'
        g = Gateway(h2_config(Addr(srv.getsockname()[1]), health=tls))
        gateways.append(g)
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", url(g, "/"))
        assert out == b"502", out
        wait_until(lambda: "not h2" in g.log() or "did not agree to h2" in g.log(),
                   what="the ALPN failure logged")
    finally:
        stop.set()
        th.join()
        srv.close()
        pki.cleanup()


# --- configuration ------------------------------------------------------------------------------

def test_config_protocol_and_alpn_are_validated(tmp_path):
    base = http_config([Addr(1)], cluster_extra='protocol = "h3"')
    rc, out = run_check(base)
    assert rc != 0 and "protocol 'h3'" in out and "http1, h2" in out, out
    bad_alpn = http_config([Addr(1)], cluster_extra='protocol = "h2"',
                           health='[cluster.tls]\nalpn = ["http/1.1"]\n')
    rc, out = run_check(bad_alpn)
    assert rc != 0 and "alpn may list only \"h2\"" in out, out
    small = http_config([Addr(1)], cluster_extra='protocol = "h2"\nh2_initial_window_bytes = 100')
    rc, out = run_check(small)
    assert rc != 0 and "h2_initial_window_bytes" in out and "65535" in out, out
    ok = http_config([Addr(1)], cluster_extra='protocol = "h2"\nh2_max_connections = 8',
                     health='[cluster.tls]\nverify = false\n')
    rc, out = run_check(ok)
    assert rc == 0, out
