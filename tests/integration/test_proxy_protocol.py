"""PROXY protocol through the real binary, both ways, with real peers: HAProxy
(`send-proxy-v2` in front of us, `accept-proxy` behind us) and nginx
(`proxy_protocol` in its stream module in front, on its listen behind), plus
raw-socket clients for what no peer sends (bent headers, byte-by-byte
headers, LOCAL, untrusted sources, slow headers)."""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from egwtest import Gateway, wait_until
from httptest import Reader, parse_head, read_to_eof
from loadtest import free_port
from tlstest import Pki, cert_table, client_context

pytestmark = pytest.mark.usefixtures("clean_exit")

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst, dport, tlvs=b"", command=1):
    fam = 0x11 if "." in src else 0x21
    af = socket.AF_INET if fam == 0x11 else socket.AF_INET6
    body = b""
    if command == 1:
        body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst)
                + struct.pack(">HH", sport, dport))
    body += tlvs
    return SIG + bytes([0x20 | command, fam if command == 1 else 0]) + struct.pack(
        ">H", len(body)) + body


class Peer:
    """HAProxy or nginx, started on a config of ours, stopped at the end."""

    def __init__(self, kind, config, port):
        self.dir = tempfile.mkdtemp(prefix=f"egw-{kind}-")
        path = os.path.join(self.dir, f"{kind}.conf")
        with open(path, "w") as f:
            f.write(config.replace("@DIR@", self.dir))
        self.log = open(os.path.join(self.dir, "out.log"), "wb")
        if kind == "haproxy":
            args = ["haproxy", "-db", "-f", path]
        else:
            os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
            args = ["nginx", "-p", self.dir, "-c", path, "-g", "daemon off;"]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"{kind} exited: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(up, 15, what=f"{kind} listening on {port}")

    def output(self):
        with open(os.path.join(self.dir, "out.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if "nginx" in self.dir else signal.SIGUSR1)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def peers():
    started = []
    yield started
    for p in started:
        p.stop()


def haproxy(peers, body, port):
    cfg = f"""
global
    maxconn 200
defaults
    timeout connect 2s
    timeout client 10s
    timeout server 10s
{body}
"""
    p = Peer("haproxy", cfg, port)
    peers.append(p)
    return p


def nginx(peers, body, port):
    cfg = f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;
events {{ worker_connections 256; }}
{body}
"""
    p = Peer("nginx", cfg, port)
    peers.append(p)
    return p


def gw_config(backend_addr, listener_extra="", cluster_extra="", protocol="http",
              trusted='["127.0.0.0/8"]', timeout_ms=5000, routes=""):
    return f"""
[global]
workers = 2

[[listener]]
name = "edge"
bind = "127.0.0.1:0"
protocol = "{protocol}"
cluster = "app"
proxy_protocol = {{ accept = true, trusted = {trusted}, timeout_ms = {timeout_ms} }}
{listener_extra}
{routes}

[[cluster]]
name = "app"
connect_timeout_ms = 1000
endpoints = [ {{ address = "{backend_addr}" }} ]
{cluster_extra}
"""


def get_headers(sock):
    """Sends GET /headers on `sock` and returns the backend's view (JSON)."""
    sock.sendall(b"GET /headers HTTP/1.1\r\nHost: t\r\n\r\n")
    r = Reader(sock)
    start, headers = parse_head(r.head())
    assert start.startswith("HTTP/1.1 200"), start
    n = int(dict((k.lower(), v) for k, v in headers)["content-length"])
    out = []
    r.exactly(n, out.append)
    return json.loads(b"".join(out))


def xff(view):
    return [v for k, v in view["headers"] if k.lower() == "x-forwarded-for"]


def proxy_stats(g):
    """SIGUSR1, then the per-worker proxy protocol counters summed."""
    before = g.log().count("proxy protocol:")
    g.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: g.log().count("proxy protocol:") >= before + 1, 10, what="stats dump")
    time.sleep(0.3)  # the other worker's line
    pat = re.compile(r"worker (\d+) proxy protocol: (\d+) headers \((\d+) without addresses\), "
                     r"(\d+) from untrusted sources, (\d+) invalid, (\d+) timed out")
    latest = {}
    for m in pat.finditer(g.log()):
        latest[m.group(1)] = [int(x) for x in m.groups()[1:]]
    total = [sum(v[i] for v in latest.values()) for i in range(5)]
    return dict(zip(["headers", "local", "untrusted", "invalid", "timeouts"], total))


def closed_without_answer(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        data = sock.recv(1024)
    except ConnectionResetError:
        return True
    return data == b""


# --- accepting headers -------------------------------------------------------

def test_v1_and_v2_headers_give_the_client_address_to_forwarding_routing_and_keep_alive(
        gateways, backend):
    routes = """
[[listener.route]]
match = { source = ["203.0.113.0/24"], path = "/who" }
respond = { status = 200, body = "documentation network\\n" }
"""
    g = Gateway(gw_config(backend.address, routes=routes))
    gateways.append(g)
    addr = g.address("edge")

    # v1, two requests on one connection: both carry the header's address.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n")
    assert xff(get_headers(s)) == ["203.0.113.7"]
    assert xff(get_headers(s)) == ["203.0.113.7"]
    # Routing by source sees it too.
    s.sendall(b"GET /who HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"documentation network" in s.recv(4096)
    s.close()

    # v2 over IPv6 addresses with TLVs (ALPN, authority, a custom one, CRC).
    tlvs = b"\x01\x00\x02h2" + b"\x02\x00\x05a.b.c" + b"\xe0\x00\x03xyz"
    s = socket.create_connection(addr, timeout=10)
    s.sendall(v2_header("2001:db8::5", 1234, "2001:db8::1", 443, tlvs))
    assert xff(get_headers(s)) == ["2001:db8::5"]
    s.close()

    # The header byte by byte (the poll wakes per missing byte), with the
    # request in the same segment as its last byte.
    s = socket.create_connection(addr, timeout=10)
    header = b"PROXY TCP4 198.51.100.20 192.0.2.1 5 6\r\n"
    for i in range(len(header) - 1):
        s.sendall(header[i:i + 1])
        time.sleep(0.005)
    s.sendall(header[-1:] + b"GET /headers HTTP/1.1\r\nHost: t\r\n\r\n")
    r = Reader(s)
    start, headers = parse_head(r.head())
    assert start.startswith("HTTP/1.1 200")
    s.close()
    assert backend.requests[-1].header("x-forwarded-for") == "198.51.100.20"

    # LOCAL (a balancer's own check) and UNKNOWN keep the connection's address.
    for h in (v2_header("", 0, "", 0, command=0), b"PROXY UNKNOWN\r\n"):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(h)
        assert xff(get_headers(s)) == ["127.0.0.1"]
        s.close()

    # HTTP/2 with prior knowledge after a header.
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge",
                          "--haproxy-protocol", f"http://{addr[0]}:{addr[1]}/headers"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == "HTTP/1.1"

    st = proxy_stats(g)
    assert st["headers"] == 6, st
    assert st["local"] == 2, st
    assert st["invalid"] == 0 and st["untrusted"] == 0, st


def test_tls_after_the_header_and_sni_and_alpn_reach_a_v2_endpoint(gateways, peers):
    """Header, then the TLS handshake; the gateway sends v2 onward with the
    TLS details, and HAProxy (accept-proxy) reports what it was told."""
    pki = Pki()
    try:
        leaf = pki.make_leaf("site", "site.test", ["site.test"])
        hport = free_port()
        haproxy(peers, f"""
frontend behind
    mode http
    bind 127.0.0.1:{hport} accept-proxy
    http-request return status 200 content-type text/plain lf-string "src=%[src]:%[src_port] dst=%[dst]:%[dst_port] authority=%[fc_pp_authority]\\n"
""", hport)
        tls = f"[listener.tls]\ncertificates = {cert_table([leaf])}\n"
        g = Gateway(gw_config(f"127.0.0.1:{hport}", cluster_extra='send_proxy = "v2"')
                    .replace("[[cluster]]", tls + "\n[[cluster]]"))
        gateways.append(g)
        addr = g.address("edge")
        raw = socket.create_connection(addr, timeout=10)
        raw.sendall(b"PROXY TCP4 192.0.2.44 198.51.100.1 51000 443\r\n")
        ctx = client_context(ca=pki.ca["cert"], alpn=["http/1.1"])
        s = ctx.wrap_socket(raw, server_hostname="site.test")
        s.sendall(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
        data = b""
        while b"authority=" not in data or not data.endswith(b"\n"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[1].decode()
        assert "src=192.0.2.44:51000" in body, body
        assert "dst=198.51.100.1:443" in body, body
        assert "authority=site.test" in body, body
        s.close()
    finally:
        pki.cleanup()


def test_untrusted_bad_late_and_cut_headers_are_closed_and_counted(gateways, backend):
    g = Gateway(gw_config(backend.address, timeout_ms=400))
    gateways.append(g)
    addr = g.address("edge")
    bad = [
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",                      # no header at all
        b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80 extra\r\n",    # a field too many
        b"PROXY TCP4 203.0.113.300 192.0.2.1 40000 80\r\n",        # not an address
        b"PROXY TCP6 203.0.113.7 192.0.2.1 40000 80\r\n",          # wrong family
        b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\n",            # LF alone
        b"PROXY UNKNOWN " + b"x" * 120,                             # no CRLF in 107
        SIG + b"\x21\x12\x00\x0c" + bytes(12),                      # a datagram flow
        SIG + b"\x21\x11\x10\x00",                                  # 4 KiB past the cap
        SIG + b"\x21\x11\x00\x0e" + bytes(12) + b"\x01\x00",        # TLV cut short
    ]
    for b in bad:
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b)
        assert closed_without_answer(s), b
        s.close()
    # Half a header, then FIN: closed.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"PROXY TCP4 203.0.113.7")
    s.shutdown(socket.SHUT_WR)
    assert closed_without_answer(s)
    s.close()
    # Half a header, then nothing: closed at timeout_ms.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"PROXY TCP4 203.0.113.7")
    t0 = time.monotonic()
    assert closed_without_answer(s)
    assert 0.3 < time.monotonic() - t0 < 3
    s.close()
    # A connection that sends nothing at all: closed at timeout_ms too.
    s = socket.create_connection(addr, timeout=10)
    assert closed_without_answer(s)
    s.close()
    # Nothing reached the endpoint; a good connection still does.
    assert backend.requests == []
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"PROXY TCP4 203.0.113.8 192.0.2.1 1 2\r\n")
    assert xff(get_headers(s)) == ["203.0.113.8"]
    s.close()
    st = proxy_stats(g)
    assert st["invalid"] == len(bad) + 1, st
    assert st["timeouts"] == 2, st
    assert st["headers"] == 1, st

    # A source outside `trusted` is closed before anything is read.
    g2 = Gateway(gw_config(backend.address, trusted='["10.0.0.0/8", "::1"]'))
    gateways.append(g2)
    s = socket.create_connection(g2.address("edge"), timeout=10)
    s.sendall(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\nGET /headers HTTP/1.1\r\nHost: t\r\n\r\n")
    assert closed_without_answer(s)
    s.close()
    assert len(backend.requests) == 1
    assert proxy_stats(g2)["untrusted"] == 1
    assert "not in proxy_protocol.trusted" in g2.log()


# --- real balancers in front ---------------------------------------------------

def test_haproxy_send_proxy_v2_and_nginx_proxy_protocol_in_front(gateways, backend, peers):
    g = Gateway(gw_config(backend.address))
    gateways.append(g)
    host, port = g.address("edge")
    hport, nport = free_port(), free_port()
    haproxy(peers, f"""
listen front
    mode tcp
    bind 127.0.0.1:{hport}
    server egw {host}:{port} send-proxy-v2
""", hport)
    nginx(peers, f"""
stream {{
    server {{
        listen 127.0.0.1:{nport};
        proxy_pass {host}:{port};
        proxy_protocol on;
    }}
}}
""", nport)
    # curl from distinct loopback sources: what the gateway's endpoint sees
    # is curl's address, not the balancer's.
    for front, source in ((hport, "127.0.0.21"), (nport, "127.0.0.22")):
        for http2 in (False, True):
            args = ["curl", "-sS", "--max-time", "20", "--interface", source]
            if http2:
                args.append("--http2-prior-knowledge")
            out = subprocess.run(args + [f"http://127.0.0.1:{front}/headers"],
                                 capture_output=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert xff(json.loads(out.stdout)) == [source], (front, http2, out.stdout)
    st = proxy_stats(g)
    assert st["headers"] >= 4 and st["invalid"] == 0, st


# --- headers toward endpoints --------------------------------------------------

def nginx_behind(peers, port):
    return nginx(peers, f"""
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        location / {{
            return 200 "$proxy_protocol_addr:$proxy_protocol_port $proxy_protocol_server_addr:$proxy_protocol_server_port conn=$connection\\n";
        }}
    }}
}}
""", port)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_send_proxy_to_nginx_with_health_checks_and_per_client_connection_reuse(
        gateways, peers, version):
    """nginx closes a connection without a header ("broken header"): the
    health checks pass only because they send a LOCAL one."""
    nport = free_port()
    nginx_behind(peers, nport)
    health = ("[cluster.health_check]\ntype = \"http\"\ninterval_ms = 100\ntimeout_ms = 500\n"
              "fall = 1\nrise = 1\n")
    cfg = f"""
[global]
workers = 1

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"

[[cluster]]
name = "app"
send_proxy = "{version}"
endpoints = [ {{ address = "127.0.0.1:{nport}" }} ]
{health}
"""
    g = Gateway(cfg)
    gateways.append(g)
    host, port = g.address("web")
    time.sleep(1.0)  # ten health checks, each with a LOCAL header (fall = 1)

    def two_requests(source):
        s = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        sport = s.getsockname()[1]
        bodies = []
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            r = Reader(s)
            start, headers = parse_head(r.head())
            assert start.startswith("HTTP/1.1 200"), (start, g.log()[-2000:])
            n = int(dict((k.lower(), v) for k, v in headers)["content-length"])
            out = []
            r.exactly(n, out.append)
            bodies.append(b"".join(out).decode())
        s.close()
        return sport, bodies

    a_port, a = two_requests("127.0.0.31")
    b_port, b = two_requests("127.0.0.32")
    for bodies, src, sport in ((a, "127.0.0.31", a_port), (b, "127.0.0.32", b_port)):
        for body in bodies:
            assert body.startswith(f"{src}:{sport} 127.0.0.1:{port} "), body
    # Each client's two requests shared one upstream connection, and the
    # clients did not share one.
    conn = lambda body: body.split("conn=")[1].strip()  # noqa: E731
    assert conn(a[0]) == conn(a[1])
    assert conn(b[0]) == conn(b[1])
    assert conn(a[0]) != conn(b[0])
    assert "is DOWN" not in g.log() and "marked down" not in g.log(), g.log()[-3000:]
    with open(os.path.join(peers[-1].dir, "error.log")) as f:
        assert "broken header" not in f.read()


def test_l4_listener_reads_a_header_and_sends_its_own_to_haproxy(gateways, peers):
    hport = free_port()
    haproxy(peers, f"""
frontend behind
    mode http
    bind 127.0.0.1:{hport} accept-proxy
    http-request return status 200 content-type text/plain lf-string "src=%[src]:%[src_port] dst=%[dst]:%[dst_port]\\n"
""", hport)
    g = Gateway(gw_config(f"127.0.0.1:{hport}", protocol="tcp", cluster_extra='send_proxy = "v2"'))
    gateways.append(g)
    addr = g.address("edge")
    for header, want in (
            (b"PROXY TCP4 198.51.100.9 203.0.113.1 1111 2222\r\n",
             "src=198.51.100.9:1111 dst=203.0.113.1:2222"),
            (v2_header("2001:db8::9", 3333, "2001:db8::1", 4444),
             "src=2001:db8::9:3333 dst=2001:db8::1:4444")):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(header + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_to_eof(s)
        s.close()
        assert want in data.decode(errors="replace"), data
    # Without a header of its own the client's real address goes on.
    g2 = Gateway(gw_config(f"127.0.0.1:{hport}", protocol="tcp", cluster_extra='send_proxy = "v1"')
                 .replace("proxy_protocol = {", "# proxy_protocol = {"))
    gateways.append(g2)
    s = socket.create_connection(g2.address("edge"), timeout=10, source_address=("127.0.0.41", 0))
    sport = s.getsockname()[1]
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = read_to_eof(s).decode(errors="replace")
    s.close()
    assert f"src=127.0.0.41:{sport} dst=127.0.0.1:{g2.address('edge')[1]}" in data, data


def test_configuration_errors_name_the_line():
    from egwtest import run_check
    base = """
[[listener]]
name = "a"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "c"
{pp}

[[cluster]]
name = "c"
{cl}
endpoints = [ {{ address = "127.0.0.1:9" }} ]
"""
    cases = [
        ("proxy_protocol = { accept = true }", "", "missing required key 'trusted'"),
        ('proxy_protocol = { trusted = [] }', "", "is an empty list"),
        ('proxy_protocol = { trusted = ["10.0.0.1/8"] }', "", "bad network '10.0.0.1/8'"),
        ('proxy_protocol = { trusted = ["10.0.0.0/8"], timeout_ms = 0 }', "",
         "'timeout_ms' in [[listener]] 'a' proxy_protocol must be between"),
        ('proxy_protocol = { trusted = ["10.0.0.0/8"], acept = true }', "",
         "did you mean 'accept'"),
        ("", 'send_proxy = "v3"', "send_proxy 'v3' in [[cluster]] 'c' is not one of off, v1, v2"),
        ("", 'send_proxy = "v2"\nprotocol = "h2"', "cannot be used with protocol = \"h2\""),
    ]
    for pp, cl, want in cases:
        rc, out = run_check(base.format(pp=pp, cl=cl))
        assert rc != 0, (pp, cl, out)
        assert want in out, (pp, cl, out)
        assert re.search(r":\d+:\d+: ", out), out


def test_http2_clients_keep_their_own_addresses_through_a_send_proxy_cluster(gateways, peers):
    """Streams of two HTTP/2 clients reach nginx each on a connection opened
    for its own client."""
    nport = free_port()
    nginx_behind(peers, nport)
    g = Gateway(f"""
[global]
workers = 1

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"

[[cluster]]
name = "app"
send_proxy = "v1"
endpoints = [ {{ address = "127.0.0.1:{nport}" }} ]
""")
    gateways.append(g)
    host, port = g.address("web")
    import h2.config
    import h2.connection
    import h2.events
    for source in ("127.0.0.51", "127.0.0.52"):
        # python3-h2: curl 7.88's --http2-prior-knowledge cannot reuse a
        # connection (curl#10634, "Error in the HTTP2 framing layer").
        s = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        bodies = {}
        for sid in (1, 3, 5):
            c.send_headers(sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                 (":authority", "t")], end_stream=True)
        s.sendall(c.data_to_send())
        ended = set()
        while len(ended) < 3:
            data = s.recv(65536)
            assert data, bodies
            for e in c.receive_data(data):
                if isinstance(e, h2.events.DataReceived):
                    bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
                    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    ended.add(e.stream_id)
                elif isinstance(e, h2.events.StreamReset):
                    raise AssertionError(f"stream {e.stream_id} reset")
            s.sendall(c.data_to_send())
        s.close()
        lines = [bodies[sid].decode().strip() for sid in (1, 3, 5)]
        assert all(l.startswith(f"{source}:") for l in lines), lines
        # One client connection, one header: its streams went to nginx on
        # connections opened for it alone.
        assert len({l.split(" ")[0] for l in lines}) == 1, lines


def parse_v2(data):
    """A PROXY v2 header's addresses and TLVs (SSL sub-TLVs flattened)."""
    assert data[:12] == SIG, data[:16]
    length = struct.unpack(">H", data[14:16])[0]
    body = data[16:16 + length]
    fam = data[13] >> 4
    alen = 4 if fam == 1 else 16
    af = socket.AF_INET if fam == 1 else socket.AF_INET6
    out = {"src": socket.inet_ntop(af, body[:alen]), "dst": socket.inet_ntop(af, body[alen:2 * alen]),
           "sport": struct.unpack(">H", body[2 * alen:2 * alen + 2])[0]}
    at = 2 * alen + 4
    while at < len(body):
        t, n = body[at], struct.unpack(">H", body[at + 1:at + 3])[0]
        v = body[at + 3:at + 3 + n]
        if t == 0x20:
            out["ssl_client"] = v[0]
            sub = 5
            while sub < len(v):
                st, sn = v[sub], struct.unpack(">H", v[sub + 1:sub + 3])[0]
                out[f"ssl_{st:#x}"] = v[sub + 3:sub + 3 + sn].decode()
                sub += 3 + sn
        else:
            out[f"{t:#x}"] = v
        at += 3 + n
    return out, 16 + length


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_l4_tls_termination_sends_the_tls_details_in_v2(gateways, version):
    """An L4 listener terminating TLS: the v2 header carries the SSL TLV
    (version, and the cipher by the name OpenSSL gives it, as HAProxy sends
    it) and the server name the client asked for."""
    from egwtest import TcpBackend
    seen = []

    def handler(conn, _):
        data = b""
        while len(data) < 16 or len(data) < 16 + struct.unpack(">H", data[14:16])[0]:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        header, n = parse_v2(data)
        seen.append(header)
        rest = data[n:]
        while b"\n" not in rest:
            chunk = conn.recv(4096)
            if not chunk:
                return
            rest += chunk
        conn.sendall(b"echo " + rest)

    backend = TcpBackend(handler)
    pki = Pki()
    try:
        leaf = pki.make_leaf("l4", "l4.test", ["l4.test"])
        g = Gateway(f"""
[global]
workers = 1

[[listener]]
name = "edge"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "app"

[listener.tls]
certificates = {cert_table([leaf])}

[[cluster]]
name = "app"
send_proxy = "v2"
endpoints = [ {{ address = "{backend.address}" }} ]
""")
        gateways.append(g)
        ctx = client_context(ca=pki.ca["cert"], version=version)
        raw = socket.create_connection(g.address("edge"), timeout=10,
                                       source_address=("127.0.0.61", 0))
        sport = raw.getsockname()[1]
        s = ctx.wrap_socket(raw, server_hostname="l4.test")
        s.sendall(b"ping\n")
        assert s.recv(100) == b"echo ping\n"
        cipher = s.cipher()[0]
        s.close()
        h = seen[0]
        assert h["src"] == "127.0.0.61" and h["sport"] == sport, h
        assert h["dst"] == "127.0.0.1", h
        assert h["0x2"] == b"l4.test", h            # AUTHORITY: the SNI
        assert h["ssl_client"] & 1, h               # PP2_CLIENT_SSL
        assert h["ssl_0x21"] == f"TLSv{version}", h  # VERSION
        assert h["ssl_0x23"] == cipher, (h, cipher)  # CIPHER, as the client saw it
    finally:
        backend.stop()
        pki.cleanup()
