"""TLS through the real binary: termination on http and tcp listeners (SNI
certificate choice, ALPN, versions, resumption, mTLS), origination to TLS
endpoints (verification), SNI passthrough, bulk transfers, bad handshakes,
and certificate reload. Clients: curl, openssl s_client, Python's ssl."""
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from egwtest import Gateway, TcpBackend, echo_handler, run_check, wait_until
from httptest import HttpBackend
from tlstest import (Pki, cert_table, client_context, exact_pattern_handler, name_handler,
                     peer_names, s_client, server_context, tls_pattern_exchange, wrap_handler)


pytestmark = pytest.mark.usefixtures("clean_exit")


@pytest.fixture(scope="module")
def pki():
    p = Pki()
    p.default = p.make_leaf("default", "default.test", ["default.test"])
    p.a = p.make_leaf("a", "a.test", ["a.test", "www.a.test"])
    p.wild = p.make_leaf("wild", "wild.test", ["*.wild.test"], kind="rsa")
    p.client = p.make_leaf("client", "client-one", [])
    p.other_ca = p.make_ca("otherca", "Some Other CA")
    p.stranger = p.make_leaf("stranger", "stranger", [], ca=p.other_ca)
    p.backend = p.make_leaf("backend", "backend.test", ["backend.test"])
    p.b = p.make_leaf("b", "b.test", ["b.test"])
    yield p
    p.cleanup()


def https_config(pki, backends, tls_extra="", listener_extra="", workers=1, certs=None,
                 cluster_tls=""):
    eps = ", ".join(f'{{ address = "{b.address}" }}' for b in backends)
    certs = certs or [pki.default, pki.a, pki.wild]
    return f"""
[global]
workers = {workers}

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
{listener_extra}

[listener.tls]
certificates = {cert_table(certs)}
{tls_extra}

[[cluster]]
name = "app"
connect_timeout_ms = 1000
endpoints = [ {eps} ]
{cluster_tls}
"""


def curl(*args, timeout=60):
    p = subprocess.run(["curl", "-sS", "--max-time", "50", *args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def resolve(g, name, listener="web"):
    host, port = g.address(listener)
    return ["--resolve", f"{name}:{port}:{host}"], f"https://{name}:{port}"


def stats_line(g, what):
    """Sends SIGUSR1 and returns the sum of the counter `what` over the
    workers' `tls:` lines (e.g. "handshakes", "resumed", "failed")."""
    before = g.log().count(" tls: ")
    g.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: g.log().count(" tls: ") > before, 10, what="stats dump")
    time.sleep(0.2)  # every worker's line
    lines = [l for l in g.log().splitlines() if " tls: " in l][-8:]
    pats = {
        "handshakes": r"tls: (\d+) handshakes",
        "resumed": r"handshakes \((\d+) resumed\)",
        "failed": r"resumed\), (\d+) failed",
        "timed_out": r"(\d+) timed out",
        "upstream_failed": r"upstream: \d+ handshakes \(\d+ resumed\), (\d+) failed",
        "upstream_resumed": r"upstream: \d+ handshakes \((\d+) resumed\)",
        "sni_routed": r"passthrough: (\d+) routed by SNI",
        "sni_missing": r"(\d+) without SNI",
    }
    # The last dump: one line per worker, the latest lines.
    workers = max(1, len({re.search(r"worker (\d+) tls", l).group(1) for l in lines}))
    return sum(int(re.search(pats[what], l).group(1)) for l in lines[-workers:])


# --- termination: certificates, ALPN, versions -----------------------------------------


def test_curl_https_serves_the_certificate_sni_names(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    addr = g.address("web")
    # curl verifies the chain and the name: the right certificate was chosen.
    for name in ("a.test", "www.a.test", "api.wild.test", "default.test"):
        r, base = resolve(g, name)
        rc, out, err = curl("--cacert", pki.ca["cert"], *r, f"{base}/headers")
        assert rc == 0, f"{name}: {err}"
        assert b'"GET"' in out or b"/headers" in out
    # The served certificate, by name (wildcard: one label only; unknown and
    # no SNI get the first certificate).
    assert peer_names(addr, "a.test")[1] == "a.test"
    assert peer_names(addr, "API.WILD.TEST")[1] == "wild.test"
    assert peer_names(addr, "x.y.wild.test")[1] == "default.test"
    assert peer_names(addr, "unknown.test")[1] == "default.test"
    assert peer_names(addr, None)[1] == "default.test"
    # RSA and ECDSA certificates both serve.
    rc, out = s_client(addr, "-servername", "api.wild.test", "-CAfile", pki.ca["cert"])
    assert "Verify return code: 0 (ok)" in out and "RSA" in out, out
    rc, out = s_client(addr, "-servername", "a.test", "-CAfile", pki.ca["cert"])
    assert "Verify return code: 0 (ok)" in out and "ECDSA" in out or "id-ecPublicKey" in out, out


def test_alpn_and_forwarded_proto(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    r, base = resolve(g, "a.test")
    rc, out, err = curl("-v", "--cacert", pki.ca["cert"], *r, f"{base}/headers")
    assert rc == 0, err
    # h2 is offered first by default (test_http2.py covers HTTP/2 itself).
    assert "ALPN: server accepted h2" in err
    assert backend.requests[-1].header("x-forwarded-proto") == "https"
    rc, out = s_client(g.address("web"), "-servername", "a.test", "-alpn", "http/1.1,h2")
    assert "ALPN protocol: h2" in out, out
    rc, out = s_client(g.address("web"), "-servername", "a.test", "-alpn", "http/1.1")
    assert "ALPN protocol: http/1.1" in out, out
    # A client offering nothing the listener speaks gets no ALPN (and may go
    # on or give up).
    _, _, _, alpn = peer_names(g.address("web"), "a.test", alpn=["spdy/3.1"])
    assert alpn is None


@pytest.mark.parametrize("listener_min,client,ok", [
    ("1.2", "-tls1_2", True),
    ("1.2", "-tls1_3", True),
    ("1.3", "-tls1_3", True),
    ("1.3", "-tls1_2", False),
])
def test_versions(gateways, pki, backend, listener_min, client, ok):
    g = Gateway(https_config(pki, [backend], tls_extra=f'min_version = "{listener_min}"'))
    gateways.append(g)
    req = b"GET /v HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    rc, out = s_client(g.address("web"), client, "-servername", "a.test", "-CAfile",
                       pki.ca["cert"], "-ign_eof", data=req)
    if ok:
        assert "HTTP/1.1 200 OK" in out, out
        assert ("TLSv1.3" if client == "-tls1_3" else "TLSv1.2") in out
    else:
        assert "HTTP/1.1 200" not in out
        assert rc != 0
        assert stats_line(g, "failed") >= 1


def test_tls12_only_listener_refuses_tls13_only_client(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend], tls_extra='max_version = "1.2"'))
    gateways.append(g)
    _, _, version, _ = peer_names(g.address("web"), "a.test")
    assert version == "TLSv1.2"
    with pytest.raises((ssl.SSLError, OSError)):
        peer_names(g.address("web"), "a.test", version="1.3")


def test_key_updates_both_ways_keep_the_connection_going(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    host, port = g.address("web")
    # s_client's commands: "k" updates its sending keys, "K" also asks the
    # server to update its own (RFC 8446 4.6.3).
    req = "GET /ku/{} HTTP/1.1\r\nHost: a.test\r\n\r\n"
    script = (f"printf '{req.format(1)}'; sleep 0.3; printf 'k\\n'; sleep 0.3; "
              f"printf '{req.format(2)}'; sleep 0.3; printf 'K\\n'; sleep 0.3; "
              f"printf '{req.format(3)}'; sleep 0.5")
    p = subprocess.run(f"({script}) | openssl s_client -connect {host}:{port} -servername a.test",
                       shell=True, capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert out.count("KEYUPDATE") == 2, out
    assert out.count("HTTP/1.1 200 OK") == 3, out
    assert [q.target for q in backend.requests] == ["/ku/1", "/ku/2", "/ku/3"]


# --- resumption -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_resumption_with_tickets_across_workers(gateways, pki, backend, tmp_path, version):
    g = Gateway(https_config(pki, [backend], workers=2))
    gateways.append(g)
    sess = str(tmp_path / "session.pem")
    req = b"GET /first HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    rc, out = s_client(g.address("web"), version, "-servername", "a.test", "-CAfile",
                       pki.ca["cert"], "-sess_out", sess, "-ign_eof", data=req)
    assert "New, TLSv1." in out and "HTTP/1.1 200 OK" in out, out
    # Several connections land on both workers (SO_REUSEPORT hashing): every
    # one resumes, whichever worker issued the ticket.
    reused = 0
    for i in range(8):
        req = f"GET /again/{i} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".encode()
        rc, out = s_client(g.address("web"), version, "-servername", "a.test", "-CAfile",
                           pki.ca["cert"], "-sess_in", sess, "-ign_eof", data=req)
        assert "HTTP/1.1 200 OK" in out, out
        reused += "Reused, TLSv1." in out
    assert reused == 8
    assert stats_line(g, "resumed") == 8
    assert stats_line(g, "handshakes") == 9


def test_tickets_survive_a_reload(gateways, pki, backend, tmp_path):
    cfg = https_config(pki, [backend])
    g = Gateway(cfg)
    gateways.append(g)
    sess = str(tmp_path / "s.pem")
    rc, out = s_client(g.address("web"), "-servername", "a.test", "-sess_out", sess,
                       "-ign_eof", data=b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1 200" in out
    g.reload(cfg + "\n# touched\n")
    rc, out = s_client(g.address("web"), "-servername", "a.test", "-sess_in", sess, "-ign_eof",
                       data=b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert "Reused, TLSv1.3" in out and "HTTP/1.1 200" in out, out


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_session_tickets_off_means_full_handshakes(gateways, pki, backend, tmp_path, version):
    """session_tickets = false: no ticket is issued, and a saved session
    (here a ticket the same keys sealed before a reload turned tickets off)
    never resumes; there is no session-ID resumption either."""
    req = b"GET /t HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"

    def connect(*args):
        rc, out = s_client(g.address("web"), version, "-servername", "a.test", "-CAfile",
                           pki.ca["cert"], "-ign_eof", *args, data=req)
        assert "HTTP/1.1 200 OK" in out, out
        return out

    g = Gateway(https_config(pki, [backend], tls_extra="session_tickets = true"))
    gateways.append(g)
    sess = str(tmp_path / "session.pem")
    out = connect("-sess_out", sess)
    assert "New, TLSv1." in out and "TLS session ticket" in out, out
    assert "Reused, TLSv1." in connect("-sess_in", sess)

    g.reload(https_config(pki, [backend], tls_extra="session_tickets = false"))
    for _ in range(2):
        out = connect("-sess_in", sess)
        assert "New, TLSv1." in out and "Reused" not in out, out
        assert "TLS session ticket" not in out, out
    # A fresh connection gets no ticket: s_client has no resumable session to
    # save, or saves one that does not resume.
    fresh = str(tmp_path / "fresh.pem")
    out = connect("-sess_out", fresh)
    assert "New, TLSv1." in out and "TLS session ticket" not in out, out
    if os.path.exists(fresh):
        out = connect("-sess_in", fresh)
        assert "New, TLSv1." in out and "Reused" not in out, out
    assert stats_line(g, "resumed") == 1


def test_ticket_lifetime_zero_is_refused(pki, backend):
    rc, out = run_check(https_config(pki, [backend], tls_extra="ticket_lifetime_s = 0"))
    assert rc == 2, out
    assert re.search(r"FILE:\d+:\d+: 'ticket_lifetime_s' in \[\[listener\]\] 'web' tls must be "
                     r"between 1 and \d+, found 0; to issue no session tickets, set "
                     r"session_tickets = false", out), out


# --- mTLS --------------------------------------------------------------------------------


def test_mtls_required(gateways, pki, backend):
    g = Gateway(https_config(
        pki, [backend], tls_extra=f'client_ca = "{pki.ca["cert"]}"\nrequire_client_cert = true'))
    gateways.append(g)
    r, base = resolve(g, "a.test")
    # With a certificate from the CA: through, and the backend learns who.
    rc, out, err = curl("--cacert", pki.ca["cert"], "--cert", pki.client["cert"], "--key",
                        pki.client["key"], "-H", "X-Client-Subject: forged", *r, f"{base}/who")
    assert rc == 0, err
    subjects = backend.requests[-1].header_all("x-client-subject")
    assert len(subjects) == 1 and "client-one" in subjects[0], subjects
    n = len(backend.requests)
    # Without one, or with one from another CA: refused in the handshake.
    rc, out, err = curl("--cacert", pki.ca["cert"], *r, f"{base}/none")
    assert rc != 0
    rc, out, err = curl("--cacert", pki.ca["cert"], "--cert", pki.stranger["cert"], "--key",
                        pki.stranger["key"], *r, f"{base}/stranger")
    assert rc != 0
    assert len(backend.requests) == n
    assert stats_line(g, "failed") >= 2


def test_mtls_optional_strips_forged_subject(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend], tls_extra=f'client_ca = "{pki.ca["cert"]}"'))
    gateways.append(g)
    r, base = resolve(g, "a.test")
    rc, out, err = curl("--cacert", pki.ca["cert"], "-H", "X-Client-Subject: /CN=admin", *r,
                        f"{base}/anon")
    assert rc == 0, err
    assert backend.requests[-1].header_all("x-client-subject") == []
    rc, out, err = curl("--cacert", pki.ca["cert"], "--cert", pki.client["cert"], "--key",
                        pki.client["key"], *r, f"{base}/known")
    assert rc == 0, err
    assert "client-one" in backend.requests[-1].header("x-client-subject")


# --- bulk, keep-alive, tunnels -------------------------------------------------------------


def test_100mib_both_ways_through_https(gateways, pki, backend, tmp_path):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    r, base = resolve(g, "a.test")
    src = tmp_path / "up.bin"
    with open(src, "wb") as f:
        for i in range(100):
            f.write(os.urandom(1 << 20))
    rc, out, err = curl("--cacert", pki.ca["cert"], *r, "--data-binary", f"@{src}",
                        f"{base}/echo", timeout=120)
    assert rc == 0, err
    # The backend hashed what it received.
    import hashlib
    import json
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert json.loads(out) == {"len": 100 << 20, "sha256": digest, "trailers": []}
    # And a download of 100 MiB of the backend's pattern, checked by hash.
    rc, body, err = curl("--cacert", pki.ca["cert"], *r, f"{base}/size/{100 << 20}", timeout=120)
    assert rc == 0 and len(body) == 100 << 20, err
    from egwtest import pattern
    assert body == pattern(1, 0, 100 << 20)


def test_keep_alive_requests_on_one_tls_connection(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    r, base = resolve(g, "a.test")
    urls = [f"{base}/k/{i}" for i in range(50)]
    rc, out, err = curl("--cacert", pki.ca["cert"], *r, *urls)
    assert rc == 0, err
    assert stats_line(g, "handshakes") == 1
    assert len([q for q in backend.requests if q.target.startswith("/k/")]) == 50


def test_websocket_over_tls(gateways, pki, backend):
    ws_backend = TcpBackend(echo_ws_handler)
    try:
        cfg = https_config(pki, [ws_backend])
        g = Gateway(cfg)
        gateways.append(g)
        host, port = g.address("web")
        code = f"""
import asyncio, ssl, websockets
async def main():
    ctx = ssl.create_default_context(cafile="{pki.ca["cert"]}")
    async with websockets.connect("wss://a.test:{port}/ws", ssl=ctx,
                                  host="{host}", port={port}, server_hostname="a.test") as ws:
        for i in range(20):
            await ws.send("m" * (i * 1000 + 1))
            assert len(await ws.recv()) == i * 1000 + 1
    print("ok")
asyncio.run(main())
"""
        p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                           timeout=60)
        assert p.stdout.strip() == "ok", p.stderr
    finally:
        ws_backend.stop()


def echo_ws_handler(conn, backend):
    """A tiny WebSocket echo server (RFC 6455: handshake, unmasked replies)."""
    import base64
    import hashlib
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(4096)
        if not d:
            return
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head).group(1)
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    buf = rest

    def need(n):
        nonlocal buf
        while len(buf) < n:
            d = conn.recv(65536)
            if not d:
                raise EOFError
            buf += d

    try:
        while True:
            need(2)
            op, ln = buf[0] & 0x0F, buf[1] & 0x7F
            off = 2
            if ln == 126:
                need(4)
                ln, off = int.from_bytes(buf[2:4], "big"), 4
            elif ln == 127:
                need(10)
                ln, off = int.from_bytes(buf[2:10], "big"), 10
            need(off + 4 + ln)
            mask = buf[off:off + 4]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[off + 4:off + 4 + ln]))
            buf = buf[off + 4 + ln:]
            if op == 8:
                conn.sendall(b"\x88\x00")
                return
            hdr = bytes([0x80 | op])
            if ln < 126:
                hdr += bytes([ln])
            elif ln < 65536:
                hdr += bytes([126]) + ln.to_bytes(2, "big")
            else:
                hdr += bytes([127]) + ln.to_bytes(8, "big")
            conn.sendall(hdr + payload)
    except EOFError:
        return


def get(sock, path):
    """One keep-alive GET on `sock`; returns the whole response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        assert d, "connection closed"
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    while len(body) < n:
        d = sock.recv(65536)
        assert d, "connection closed"
        body += d
    return head + b"\r\n\r\n" + body


# --- bad handshakes ------------------------------------------------------------------------


def test_first_handshake_after_a_quiet_spell_gets_its_full_timeout(gateways, pki, backend):
    # Nothing wakes the worker while it is idle (no health checks, no pooled
    # connections): the handshake timeout armed for the next connection must
    # count from its arrival, not from the last time the worker ran.
    g = Gateway(https_config(pki, [backend], tls_extra="handshake_timeout_ms = 1000"))
    gateways.append(g)
    addr = g.address("web")
    ctx = client_context(pki.ca["cert"])
    for _ in range(2):
        time.sleep(1.5)
        s = ctx.wrap_socket(socket.create_connection(addr, timeout=10), server_hostname="a.test")
        assert get(s, "/after-quiet").startswith(b"HTTP/1.1 200")
        s.close()
    assert stats_line(g, "timed_out") == 0


def test_garbage_truncated_and_slow_handshakes(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend], tls_extra="handshake_timeout_ms = 500"))
    gateways.append(g)
    addr = g.address("web")
    good_ctx = client_context(pki.ca["cert"])

    def closed(sock, timeout=5):
        sock.settimeout(timeout)
        try:
            while sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    # A long-lived good session stays up while the bad ones come and go.
    keep = good_ctx.wrap_socket(socket.create_connection(addr, timeout=10),
                                server_hostname="a.test")
    assert get(keep, "/keep/1").startswith(b"HTTP/1.1 200")

    # 1. Plain HTTP to the TLS port.
    s = socket.create_connection(addr)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed(s)
    # 2. Random bytes.
    s = socket.create_connection(addr)
    s.sendall(os.urandom(3000))
    assert closed(s)
    # 3. A record header announcing a huge record.
    s = socket.create_connection(addr)
    s.sendall(b"\x16\x03\x01\xff\xff" + b"\x01" * 100)
    assert closed(s)
    # 4. A real ClientHello cut short, then silence: the handshake timeout.
    hello = capture_client_hello(pki)
    s = socket.create_connection(addr)
    s.sendall(hello[: len(hello) // 2])
    start = time.monotonic()
    assert closed(s, timeout=5)
    assert 0.3 < time.monotonic() - start < 3
    # 5. Half a ClientHello and a close.
    s = socket.create_connection(addr)
    s.sendall(hello[:40])
    s.close()
    # 6. Connect and say nothing.
    s = socket.create_connection(addr)
    assert closed(s, timeout=5)

    assert get(keep, "/keep/2").startswith(b"HTTP/1.1 200")
    keep.close()
    rc, out, err = curl("--cacert", pki.ca["cert"], *resolve(g, "a.test")[0],
                        resolve(g, "a.test")[1] + "/after")
    assert rc == 0, err
    assert stats_line(g, "failed") >= 3
    assert stats_line(g, "timed_out") >= 2
    assert g.proc.poll() is None


def capture_client_hello(pki, name="a.test"):
    """The first flight of a real TLS client (Python's ssl) asking for
    `name`, captured."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    ctx = client_context(pki.ca["cert"])
    c = socket.create_connection(srv.getsockname())
    c.setblocking(False)
    obj = ctx.wrap_socket(c, server_hostname=name, do_handshake_on_connect=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    conn, _ = srv.accept()
    conn.settimeout(5)
    data = conn.recv(65536)
    conn.close()
    obj.close()
    srv.close()
    return data


# --- tcp listeners: termination, origination, passthrough -----------------------------------


def tcp_config(listener_tls="", cluster_tls="", clusters=None, routes="", listener_cluster="a"):
    clusters = clusters or {}
    text = f"""
[global]
workers = 1

[[listener]]
name = "l4"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "{listener_cluster}"
{routes}
{listener_tls}
"""
    for name, (backend, tls) in clusters.items():
        text += f"""
[[cluster]]
name = "{name}"
connect_timeout_ms = 1000
endpoints = [ {{ address = "{backend.address}" }} ]
{tls}
"""
    return text


def test_tcp_termination_100mib_both_ways(gateways, pki):
    b = TcpBackend(exact_pattern_handler)
    try:
        g = Gateway(tcp_config(
            listener_tls=f"[listener.tls]\ncertificates = {cert_table([pki.a])}",
            clusters={"a": (b, "")}))
        gateways.append(g)
        ctx = client_context(pki.ca["cert"])
        with ctx.wrap_socket(socket.create_connection(g.address("l4"), timeout=60),
                             server_hostname="a.test") as s:
            n, bad = tls_pattern_exchange(s, 100 << 20, 100 << 20, 42)
        assert n == 100 << 20 and bad is None
        wait_until(lambda: getattr(b, "results", None), 30, what="backend result")
        assert b.results == [(42, True, 100 << 20)]
    finally:
        b.stop()


def test_tcp_origination_verifies_the_endpoint(gateways, pki):
    good = TcpBackend(wrap_handler(server_context(pki.backend), echo_handler_tls))
    try:
        # Verified with the right CA and name: bytes go both ways.
        tls = f"""
[cluster.tls]
ca_file = "{pki.ca['cert']}"
sni = "backend.test"
"""
        g = Gateway(tcp_config(clusters={"a": (good, tls)}))
        gateways.append(g)
        with socket.create_connection(g.address("l4"), timeout=10) as s:
            for i in range(20):
                msg = os.urandom(50000)
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    got += s.recv(65536)
                assert got == msg
        # The wrong name: closed, and the log says why.
        bad = tls.replace('sni = "backend.test"', 'sni = "other.test"')
        g.reload(tcp_config(clusters={"a": (good, bad)}))
        # (port 0: the reload bound a new port)
        with socket.create_connection(g.address("l4"), timeout=10) as s:
            s.sendall(b"hello")
            s.settimeout(5)
            try:
                assert s.recv(100) == b""  # closed, nothing relayed
            except ConnectionResetError:
                pass
        wait_until(lambda: "TLS to " in g.log(), 5, what="verify failure logged")
        assert re.search(r"TLS to \S+ failed: .*(verif|name|match|ASN)", g.log()), g.log()
        assert stats_line(g, "upstream_failed") >= 1
    finally:
        good.stop()


def echo_handler_tls(conn, backend):
    while True:
        try:
            d = conn.recv(65536)
        except (ssl.SSLError, OSError):
            return
        if not d:
            return
        conn.sendall(d)


def test_sni_passthrough_to_two_tls_backends(gateways, pki):
    ba = TcpBackend(wrap_handler(server_context(pki.a), name_handler("A")))
    bb = TcpBackend(wrap_handler(server_context(pki.b), name_handler("B")))
    plain = TcpBackend(echo_handler)
    try:
        routes = """
[[listener.route]]
match = { sni = "a.test" }
cluster = "a"

[[listener.route]]
match = { sni = ["b.test", "*.b.test"] }
cluster = "b"
"""
        g = Gateway(tcp_config(routes=routes, listener_cluster="plain",
                               clusters={"a": (ba, ""), "b": (bb, ""), "plain": (plain, "")}))
        gateways.append(g)
        addr = g.address("l4")
        # The backends' own certificates reach the client: the proxy does not
        # terminate, it routes on the ClientHello's server name.
        for name, tag, cn in (("a.test", "A", "a.test"), ("b.test", "B", "b.test"),
                              ("B.TEST", "B", "b.test")):
            ctx = client_context(pki.ca["cert"])
            ctx.check_hostname = False
            with ctx.wrap_socket(socket.create_connection(addr, timeout=10),
                                 server_hostname=name) as s:
                assert peer_cn(s) == cn
                s.sendall(b"ping\n")
                assert s.recv(100) == f"{tag}: ping\n".encode()
        # s_client agrees.
        rc, out = s_client(addr, "-servername", "b.test", "-CAfile", pki.ca["cert"], "-ign_eof",
                           data=b"x\n")
        assert "B: x" in out and "Verify return code: 0 (ok)" in out, out
        # No SNI, and not TLS at all: the listener's cluster (plain echo).
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.recv(100) == b"GET / HTTP/1.0\r\n\r\n"
        # A ClientHello trickling in byte by byte is still routed.
        hello = capture_client_hello(pki, "a.test")
        with socket.create_connection(addr, timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(hello)):
                s.sendall(hello[i:i + 1])
                time.sleep(0.001)
            s.settimeout(5)
            first = s.recv(5)
            assert first[:1] == b"\x16"  # a ServerHello from backend A
        # Half a hello and a FIN: closed at once, nothing reaches a backend.
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(hello[:60])
            s.shutdown(socket.SHUT_WR)
            s.settimeout(3)
            start = time.monotonic()
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            assert time.monotonic() - start < 2
        assert ba.accepted == 2 and bb.accepted == 3
        assert stats_line(g, "sni_routed") >= 5
        assert stats_line(g, "sni_missing") >= 1
    finally:
        for b in (ba, bb, plain):
            b.stop()


def peer_cn(s):
    der = s.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                       input=ssl.DER_cert_to_PEM_cert(der), capture_output=True, text=True)
    return p.stdout.split("CN", 1)[1].lstrip(" =").strip()


def test_sni_routes_after_termination(gateways, pki):
    ba = TcpBackend(name_handler("A"))
    bb = TcpBackend(name_handler("B"))
    try:
        routes = """
[[listener.route]]
match = { sni = "b.test" }
cluster = "b"
"""
        g = Gateway(tcp_config(
            routes=routes, listener_tls=f"[listener.tls]\ncertificates = {cert_table([pki.a, pki.b])}",
            clusters={"a": (ba, ""), "b": (bb, "")}))
        gateways.append(g)
        for name, tag in (("a.test", "A"), ("b.test", "B")):
            ctx = client_context(pki.ca["cert"])
            with ctx.wrap_socket(socket.create_connection(g.address("l4"), timeout=10),
                                 server_hostname=name) as s:
                s.sendall(b"hi\n")
                assert s.recv(100) == f"{tag}: hi\n".encode()
    finally:
        ba.stop()
        bb.stop()


# --- http origination ----------------------------------------------------------------------


def tls_http_backend(pki):
    b = HttpBackend()
    b.tcp.handler = wrap_handler(server_context(pki.backend), b._serve)
    return b


def test_https_upstream_verified_pooled_and_resumed(gateways, pki):
    b = tls_http_backend(pki)
    try:
        tls = f"""
[cluster.tls]
ca_file = "{pki.ca['cert']}"
sni = "backend.test"
"""
        g = Gateway(http_plain_config([b], tls))
        gateways.append(g)
        host, port = g.address("web")
        for i in range(20):
            rc, out, err = curl(f"http://{host}:{port}/size/{1000 + i}")
            assert rc == 0 and len(out) == 1000 + i, err
        # Keep-alive to the endpoint: far fewer TLS connections than requests.
        assert b.connections < 5
        # Requests that need new connections resume the saved session.
        outs = []
        procs = [subprocess.Popen(["curl", "-sS", f"http://{host}:{port}/sleep/200"],
                                  stdout=subprocess.PIPE) for _ in range(4)]
        for p in procs:
            outs.append(p.communicate(timeout=30)[0])
        assert all(o for o in outs)
        assert stats_line(g, "upstream_resumed") >= 1
    finally:
        b.stop()


def http_plain_config(backends, cluster_tls):
    eps = ", ".join(f'{{ address = "{b.address}" }}' for b in backends)
    return f"""
[global]
workers = 1

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"

[[cluster]]
name = "app"
connect_timeout_ms = 1000
retries = 0
endpoints = [ {eps} ]
{cluster_tls}
"""


def test_https_upstream_verify_failure_is_502_with_reason(gateways, pki):
    b = tls_http_backend(pki)
    try:
        tls = f"""
[cluster.tls]
ca_file = "{pki.other_ca['cert']}"
sni = "backend.test"
"""
        g = Gateway(http_plain_config([b], tls))
        gateways.append(g)
        host, port = g.address("web")
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://{host}:{port}/x")
        assert out == b"502", (out, err)
        wait_until(lambda: "TLS to" in g.log(), 5, what="reason logged")
        assert re.search(r"TLS to \S+ failed: .+", g.log())
        assert stats_line(g, "upstream_failed") >= 1
        # A plain-HTTP endpoint behind a TLS cluster never answers the
        # ClientHello: 504 once the handshake's time (twice the connect
        # timeout) is up.
        plain = HttpBackend()
        try:
            g.reload(http_plain_config([plain], tls.replace(pki.other_ca["cert"],
                                                             pki.ca["cert"])))
            host, port = g.address("web")
            start = time.monotonic()
            rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}",
                                f"http://{host}:{port}/y")
            assert out == b"504"
            assert 1.5 < time.monotonic() - start < 5
        finally:
            plain.stop()
    finally:
        b.stop()


def test_http_health_check_on_a_tls_cluster_speaks_tls(gateways, pki):
    """An http health check on a TLS cluster uses the cluster's TLS settings:
    handshake, verification and SNI, then the request over TLS."""
    b = tls_http_backend(pki)
    health = """
[cluster.health_check]
type = "http"
path = "{path}"
interval_ms = 100
timeout_ms = 1000
rise = 1
fall = 1
"""

    def config(path="/healthy", ca=None):
        tls = f"""
[cluster.tls]
ca_file = "{ca or pki.ca['cert']}"
sni = "backend.test"
"""
        return http_plain_config([b], tls + health.format(path=path))

    def status():
        host, port = g.address("web")
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://{host}:{port}/x")
        return out

    def checks():
        return [r for r in list(b.requests) if r.target == "/healthy"]

    try:
        g = Gateway(config())
        gateways.append(g)
        # Checks arrive over TLS, with the cluster's SNI as the Host; the
        # endpoint stays up.
        wait_until(lambda: len(checks()) >= 3, 5, what="health checks over TLS")
        assert "is DOWN" not in g.log(), g.log()
        assert checks()[0].method == "GET" and checks()[0].header("host") == "backend.test"
        assert getattr(b.tcp, "handshake_failures", 0) == 0
        assert status() == b"200"
        # 500 over TLS: down, with the status as the reason; clients get 503.
        g.reload(config(path="/status/500"))
        wait_until(lambda: "is DOWN" in g.log(), 5, what="endpoint down on 500")
        assert re.search(r"is DOWN \(health check: status 500 ", g.log()), g.log()
        assert status() == b"503"
        # Healthy again: up.
        g.reload(config())
        wait_until(lambda: "is UP" in g.log(), 5, what="endpoint up again")
        assert status() == b"200"
        # A CA that did not sign the endpoint's certificate: the handshake
        # fails verification, the endpoint goes down with that reason.
        g.reload(config(ca=pki.other_ca["cert"]))
        wait_until(lambda: g.log().count("is DOWN") >= 2, 5, what="endpoint down on bad CA")
        down = [l for l in g.log().splitlines() if "is DOWN" in l][-1]
        assert re.search(r"health check: TLS handshake failed: .+", down), down
        assert status() == b"503"
    finally:
        b.stop()


# --- reload and configuration ---------------------------------------------------------------


def test_kernel_tls_is_probed_once_and_reported_in_one_line(gateways, pki, backend):
    g = Gateway(https_config(pki, [backend]))
    gateways.append(g)
    log = g.log()
    lines = [l for l in log.splitlines() if re.search(r"kernel tls|ktls", l, re.I)]
    assert len(lines) == 1, lines
    assert re.match(r"\s+kernel TLS: (yes|no) \(.+\)$", lines[0]), lines
    # No kTLS counter: nothing is handed to the kernel.
    peer_names(g.address("web"), "a.test")
    assert stats_line(g, "handshakes") == 1
    assert "kTLS" not in g.log()[len(log):]



def test_reload_swaps_certificates_and_keeps_sessions(gateways, pki, backend):
    cfg1 = https_config(pki, [backend], certs=[pki.a])
    g = Gateway(cfg1)
    gateways.append(g)
    addr = g.address("web")
    ctx = client_context(pki.ca["cert"])
    keep = ctx.wrap_socket(socket.create_connection(addr, timeout=10), server_hostname="a.test")
    assert get(keep, "/before").startswith(b"HTTP/1.1 200")
    assert peer_names(addr, "b.test")[1] == "a.test"
    # New certificate set: b.test is served from now on.
    g.reload(https_config(pki, [backend], certs=[pki.a, pki.b]))
    addr = g.address("web")  # port 0 binds anew
    assert peer_names(addr, "b.test")[1] == "b.test"
    # A missing key file: the reload fails, the old certificates stay.
    broken = https_config(pki, [backend], certs=[pki.a, {"cert": pki.b["cert"],
                                                          "key": "/nonexistent/b.key"}])
    g.reload(broken, expect_ok=False)
    assert "/nonexistent/b.key" in g.log()
    assert peer_names(addr, "b.test")[1] == "b.test"
    # A key that does not match its certificate: refused too, with the reason.
    mismatched = https_config(pki, [backend], certs=[{"cert": pki.a["cert"],
                                                       "key": pki.b["key"]}])
    g.reload(mismatched, expect_ok=False)
    # The session from before every reload still works.
    assert get(keep, "/after").startswith(b"HTTP/1.1 200")
    keep.close()


def test_check_reports_tls_errors_precisely(pki):
    base = """
[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
{tls}

[[cluster]]
name = "app"
endpoints = [ {{ address = "127.0.0.1:1" }} ]
"""
    cases = [
        ("[listener.tls]\n", "needs at least one certificate"),
        (f'[listener.tls]\ncertificates = [{{ cert = "{pki.a["cert"]}" }}]\n', "needs both"),
        ('[listener.tls]\ncertificates = [{ cert = "/nope.pem", key = "/nope.key" }]\n',
         "'/nope.pem' cannot be read"),
        (f'[listener.tls]\ncertificates = {cert_table([pki.a])}\nmin_version = "1.1"\n',
         'must be "1.2" or "1.3"'),
        (f'[listener.tls]\ncertificates = {cert_table([pki.a])}\nalpn = ["h3"]\n',
         "alpn 'h3'"),
        (f'[listener.tls]\ncertificates = [{{ cert = "{pki.a["cert"]}", key = "{pki.b["key"]}" }}]\n',
         "listener 'web' tls"),
        (f'[listener.tls]\ncertificates = {cert_table([pki.a])}\nrequire_client_cert = true\n',
         "needs client_ca"),
        (f'[listener.tls]\ncertificates = {cert_table([pki.a])}\nbogus = 1\n', "bogus"),
    ]
    for tls, expect in cases:
        rc, out = run_check(base.format(tls=tls))
        assert rc == 2, (tls, out)
        assert expect in out, (tls, out)
        assert re.search(r":\d+:\d+: ", out), out  # file:line:column
    rc, out = run_check(base.format(tls=f'[listener.tls]\ncertificates = {cert_table([pki.a])}\n'))
    assert rc == 0, out


# --- the load generator over https ------------------------------------------------------------


def load_json(*args, expect_rc=0):
    from loadtest import run_load_json
    return run_load_json(*args, expect_rc=expect_rc)


def local_https_config(pki):
    return f"""
[global]
workers = 1

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
[listener.tls]
certificates = {cert_table([pki.a])}
[[listener.route]]
match = {{ path = "/hi" }}
respond = {{ status = 200, body = "hi" }}
"""


def test_load_generator_https_keep_alive_and_handshake_phase(gateways, pki):
    g = Gateway(local_https_config(pki))
    gateways.append(g)
    host, port = g.address("web")
    out, _ = load_json("--url", f"https://127.0.0.1:{port}/hi", "--rate", 500, "--duration", "1s",
                       "-c", 4, "--cacert", pki.ca["cert"], "--sni", "a.test")
    assert out["errors"] == 0 and out["requests"] >= 450, out
    # Four keep-alive connections: four handshakes, timed.
    assert out["phases_us"]["tls_handshake"]["count"] == 4, out["phases_us"]
    assert stats_line(g, "handshakes") == 4


def test_load_generator_https_new_connections_resume_unless_told_not_to(gateways, pki):
    g = Gateway(local_https_config(pki))
    gateways.append(g)
    host, port = g.address("web")
    url = f"https://127.0.0.1:{port}/hi"
    out, _ = load_json("--url", url, "--rate", 200, "--duration", "1s", "-c", 2,
                       "--new-connection-per-request", "--cacert", pki.ca["cert"], "--sni",
                       "a.test")
    n = out["phases_us"]["tls_handshake"]["count"]
    assert out["errors"] == 0 and n >= 190, out
    assert out["tls_resumed"] >= n - 4, out  # all but the first few
    out, _ = load_json("--url", url, "--rate", 200, "--duration", "1s", "-c", 2,
                       "--new-connection-per-request", "--cacert", pki.ca["cert"], "--sni",
                       "a.test", "--no-tls-resume")
    assert out["errors"] == 0 and out["tls_resumed"] == 0, out


def test_load_generator_https_verification_failure_is_a_tls_error(gateways, pki):
    g = Gateway(local_https_config(pki))
    gateways.append(g)
    host, port = g.address("web")
    out, p = load_json("--url", f"https://127.0.0.1:{port}/hi", "--rate", 50, "--duration",
                       "500ms", "-c", 1, "--cacert", pki.other_ca["cert"], "--sni", "a.test",
                       "--new-connection-per-request", expect_rc=1)
    assert out["requests"] == 0
    assert out["error_kinds"]["tls"] >= 20, out["error_kinds"]
    # --insecure goes through.
    out, _ = load_json("--url", f"https://127.0.0.1:{port}/hi", "--rate", 50, "--duration",
                       "500ms", "-c", 1, "-k")
    assert out["errors"] == 0 and out["requests"] >= 20
