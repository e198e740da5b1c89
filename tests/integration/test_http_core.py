"""What the HTTP core refuses or normalises on the way upstream (duplicate
Content-Length, h2c upgrades, CONNECT), and back-pressure toward a TLS client
that stops reading."""
import json
import os
import socket
import ssl
import threading
import time

import pytest

from egwtest import Gateway, wait_until
from httptest import http_exchange, status_of
from tlstest import Pki, cert_table
from test_http import http_config


pytestmark = pytest.mark.usefixtures("clean_exit")


def one_shot_upstream(serve):
    """A raw upstream on 127.0.0.1:0 that calls serve(conn) for one
    connection; returns (its address holder, the thread)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)

    def run():
        c, _ = lst.accept()
        serve(c)
        c.close()
        lst.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()

    class Addr:
        address = f"127.0.0.1:{lst.getsockname()[1]}"

    return Addr(), t


def upstream_request(resp):
    assert status_of(resp) == 200, resp[:300]
    return json.loads(resp.split(b"\r\n\r\n", 1)[1])


def fields(req, name):
    return [v for n, v in req["headers"] if n.lower() == name]


def test_duplicate_content_length_goes_upstream_once(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    resp = http_exchange(g.address("web"),
                         b"POST /headers HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                         b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
    req = upstream_request(resp)
    assert fields(req, "content-length") == ["5"]
    assert backend.requests[-1].body_len == 5


def test_h2c_upgrade_is_never_forwarded(gateways, backend):
    g = Gateway(http_config([backend]))
    gateways.append(g)
    addr = g.address("web")
    # Upgrade to h2c only: served as plain HTTP/1.1, no trace of the upgrade
    # upstream (a backend's 101 would otherwise open an HTTP/2 tunnel past
    # every rule).
    req = upstream_request(http_exchange(
        addr, b"GET /headers HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
              b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"))
    for name in ("upgrade", "http2-settings", "connection"):
        assert fields(req, name) == [], name
    # HTTP2-Settings goes even when Connection does not name it.
    req = upstream_request(http_exchange(
        addr, b"GET /headers HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
              b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, close\r\n\r\n"))
    assert fields(req, "http2-settings") == [] and fields(req, "upgrade") == []


def test_h2c_token_is_dropped_from_a_longer_upgrade_list(gateways):
    seen = []

    def serve(c):
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(65536)
        seen.append(head)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nhi")
        time.sleep(0.5)

    up, t = one_shot_upstream(serve)
    g = Gateway(http_config([up]))
    gateways.append(g)
    resp = http_exchange(g.address("web"), b"GET /t HTTP/1.1\r\nHost: a\r\n"
                                           b"Connection: Upgrade\r\nUpgrade: h2c, raw\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 101") and resp.endswith(b"hi"), resp
    t.join(5)
    lines = seen[0].lower().split(b"\r\n")
    assert b"upgrade: raw" in lines and not any(b"h2c" in l for l in lines), seen[0]


def test_a_101_to_a_request_that_asked_only_for_h2c_is_502(gateways):
    def serve(c):
        c.recv(65536)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
                  b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        time.sleep(1)

    up, _ = one_shot_upstream(serve)
    g = Gateway(http_config([up]))
    gateways.append(g)
    resp = http_exchange(g.address("web"), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, "
                                           b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n")
    assert status_of(resp) == 502, resp
    assert b"PRI *" not in resp


def connect_backend():
    """Accepts one CONNECT, answers 200, then echoes."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    got = []

    def run():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                d = c.recv(65536)
                if not d:
                    break
                head += d
            got.append(head)
            c.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
            c.close()

    threading.Thread(target=run, daemon=True).start()

    class Addr:
        address = f"127.0.0.1:{lst.getsockname()[1]}"
        requests = got
        sock = lst

    return Addr()


def test_connect_is_405_unless_a_route_allows_it(gateways):
    up = connect_backend()
    g = Gateway(http_config([up]))
    gateways.append(g)
    resp = http_exchange(g.address("web"),
                         b"CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n"
                         b"SSH-2.0-x\r\n")
    assert status_of(resp) == 405, resp
    assert b"Connection: close" in resp and b"SSH" not in resp
    time.sleep(0.2)
    assert up.requests == []  # the backend never saw it

    routes = """
[[listener.route]]
match = { method = "CONNECT" }
cluster = "app"
allow_connect = true
"""
    g2 = Gateway(http_config([up], routes))
    gateways.append(g2)
    s = socket.create_connection(g2.address("web"), timeout=10)
    s.sendall(b"CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    s.sendall(b"ping through the tunnel")
    echoed = b""
    while len(echoed) < len(b"ping through the tunnel"):
        echoed += s.recv(4096)
    assert echoed == b"ping through the tunnel"
    s.close()
    assert up.requests[0].startswith(b"CONNECT internal.example:22 HTTP/1.1\r\n")
    up.sock.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_clients_that_stop_reading_do_not_grow_the_proxy(gateways, backend, tls):
    pki = Pki()
    try:
        leaf = pki.make_leaf("a", "a.test", ["a.test"])
        extra = f"""
[listener.tls]
certificates = {cert_table([leaf])}
""" if tls else ""
        # Under AddressSanitizer freed memory waits in a quarantine (256 MiB
        # by default) and would count as growth: keep none.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=0"}
        g = Gateway(http_config([backend], listener_extra=extra), env=env)
        gateways.append(g)
        ctx = ssl.create_default_context(cafile=pki.ca["cert"])
        host, port = g.address("web")

        def client():
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw.settimeout(10)
            raw.connect((host, port))
            return ctx.wrap_socket(raw, server_hostname="a.test") if tls else raw

        # Warm up (buffer rings, chunk pools, TLS context), then the baseline.
        w = client()
        w.sendall(b"GET /size/1000000 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        n = 0
        while True:
            d = w.recv(65536)
            if not d:
                break
            n += len(d)
        assert n > 1000000
        w.close()
        time.sleep(0.3)
        base = rss_kib(g.proc.pid)
        stalled = []
        for _ in range(20):
            s = client()
            s.sendall(b"GET /size/104857600 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert s.recv(1024)  # the response started; from now on nobody reads
            stalled.append(s)
        wait_until(lambda: len(backend.requests) >= 21, what="20 large responses under way")
        time.sleep(3)  # let whatever the proxy would buffer pile up
        grown = rss_kib(g.proc.pid) - base
        for s in stalled:
            s.close()
        print(f"RSS growth {grown} KiB")
        assert grown < 16 * 1024, f"proxy RSS grew by {grown} KiB for 20 stalled TLS readers"
    finally:
        pki.cleanup()
