"""Access logs (`access_log` on a listener): a JSON line per HTTP/1.1 and
HTTP/2 request (over TLS too) with every field, lines for requests the
proxy refused or answered itself, a line per L4 session at its close,
the combined format and templates, standard output, configuration errors,
reloads that move the log, and rotation under load (logrotate's move, then
`reopen logs` or SIGUSR2): no line lost or torn."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from egwtest import BINARY, Gateway, TcpBackend, echo_handler, run_check, wait_until
from h2test import H2Client
from httptest import Responses
from tlstest import Pki, cert_table, client_context

pytestmark = pytest.mark.usefixtures("clean_exit")


def read_json_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), f"a torn last line in {path}: {data[-200:]!r}"
    return [json.loads(line) for line in data.split(b"\n") if line]


def get(addr, path, headers="", conn=None):
    s = conn or socket.create_connection(addr, timeout=30)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
        status, _, body = Responses(s).next()
        return status, body
    finally:
        if conn is None:
            s.close()


def wait_lines(path, n, timeout=10):
    wait_until(lambda: os.path.exists(path) and len(read_json_lines(path)) >= n, timeout,
               what=f"{n} lines in {path}")
    return read_json_lines(path)


def test_json_lines_for_http1_http2_tls_refusals_and_local_answers(gateways, backend,
                                                                   tmp_path):
    pki = Pki()
    try:
        leaf = pki.make_leaf("leaf", "localhost", ["localhost"])
        log = str(tmp_path / "access.json")
        g = Gateway(f"""
[global]
workers = 2

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
access_log = {{ path = "{log}", format = "json" }}

[[listener.route]]
match = {{ path = "/local" }}
respond = {{ status = 204 }}

[[listener]]
name = "secure"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
access_log = {{ path = "{log}" }}
[listener.tls]
certificates = {cert_table([leaf])}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend.address}" }} ]
""")
        gateways.append(g)
        web = g.address("web")
        assert get(web, "/size/1000", "User-Agent: t/1 \"q\"\r\nReferer: http://r/\r\n")[0] == 200
        s = socket.create_connection(web, timeout=10)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        assert Responses(s).next()[0] == 200
        s.close()
        assert get(web, "/local")[0] == 204
        s = socket.create_connection(web, timeout=10)
        s.sendall(b"GET /bad path HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Responses(s).next()[0] == 400
        s.close()
        h2c = H2Client(web)
        sid = h2c.request("/size/300")
        assert h2c.wait(sid).status == 200
        h2c.close()
        tls_sock = client_context(ca=pki.ca["cert"], alpn=["http/1.1"]).wrap_socket(
            socket.create_connection(g.address("secure"), timeout=10),
            server_hostname="localhost")
        assert get(None, "/tls", conn=tls_sock)[0] == 200
        tls_sock.close()

        lines = wait_lines(log, 6)
        by_path = {line["path"]: line for line in lines}
        for line in lines:
            assert set(line) >= {"time", "client", "client_port", "listener", "protocol", "status",
                                 "termination", "total_us", "tls_handshake_us"}
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
            assert line["client"] == "127.0.0.1" and line["client_port"] > 0
        a = by_path["/size/1000"]
        assert (a["listener"], a["protocol"], a["version"], a["method"]) == \
            ("web", "h1", "HTTP/1.1", "GET")
        assert (a["status"], a["bytes_out"], a["termination"]) == (200, 1000, "done")
        assert (a["cluster"], a["endpoint"], a["retries"]) == ("app", backend.address, 0)
        assert a["user_agent"] == 't/1 "q"' and a["referer"] == "http://r/"
        assert a["authority"] == "t"
        assert a["connect_us"] is not None and a["connect_us"] >= 0
        assert 0 <= a["ttfb_us"] <= a["total_us"] and a["accept_to_headers_us"] >= 0
        assert a["tls_version"] is None and a["tls_handshake_us"] is None
        assert by_path["/echo"]["bytes_in"] == 5 and by_path["/echo"]["method"] == "POST"
        loc = by_path["/local"]
        assert (loc["status"], loc["termination"], loc["cluster"]) == (204, "local", None)
        bad = [line for line in lines if line["status"] == 400]
        assert bad and bad[0]["termination"] == "bad_request" and bad[0]["method"] is None
        h2 = by_path["/size/300"]
        assert (h2["protocol"], h2["version"], h2["bytes_out"]) == ("h2", "HTTP/2.0", 300)
        t = by_path["/tls"]
        assert t["listener"] == "secure" and t["tls_version"] in ("TLSv1.3", "TLSv1.2")
        assert t["tls_cipher"] and t["sni"] == "localhost" and t["tls_handshake_us"] > 0
    finally:
        pki.cleanup()


def test_tcp_sessions_log_a_line_at_close_and_templates(gateways, tmp_path):
    be = TcpBackend(echo_handler)
    try:
        log = str(tmp_path / "l4.log")
        fmt = ("%client %protocol %listener %cluster %endpoint in=%bytes_in out=%bytes_out "
               "%termination connect=%connect_us total=%total_us %status 100%%")
        g = Gateway(f"""
[[listener]]
name = "l4"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "echo"
access_log = {{ path = "{log}", format = "{fmt}" }}

[[cluster]]
name = "echo"
endpoints = [ {{ address = "{be.address}" }} ]
""")
        gateways.append(g)
        s = socket.create_connection(g.address("l4"), timeout=10)
        s.sendall(b"x" * 12345)
        got = b""
        while len(got) < 12345:
            got += s.recv(65536)
        s.close()
        wait_until(lambda: os.path.exists(log) and open(log).read().count("\n") == 1,
                   what="the L4 line")
        line = open(log).read()
        m = re.fullmatch(rf"127\.0\.0\.1 tcp l4 echo {re.escape(be.address)} in=12345 out=12345 "
                         r"closed connect=(\d+) total=(\d+) - 100%\n", line)
        assert m, line
        assert int(m.group(1)) <= int(m.group(2))
    finally:
        be.stop()


def test_combined_format_on_standard_output(gateways, backend):
    g = Gateway(f"""
[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
access_log = {{ path = "-", format = "combined" }}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend.address}" }} ]
""")
    gateways.append(g)
    assert get(g.address("web"), "/size/7?q=1", "User-Agent: agent/2\r\n")[0] == 200
    pat = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                     r'"GET /size/7\?q=1 HTTP/1\.1" 200 7 "-" "agent/2"$', re.M)
    wait_until(lambda: pat.search(g.log()), what="the combined line on stdout")


def test_configuration_errors(tmp_path):
    base = """
[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
access_log = {{ {al} }}

[[listener.route]]
match = {{}}
respond = {{ status = 200 }}
"""
    for al, want in (('path = "rel/access.log"', "must be absolute"),
                     (f'path = "{tmp_path}/a.log", format = "%client %nope"',
                      "unknown field '%nope'"),
                     (f'path = "{tmp_path}/a.log", format = "50%"', "without a field name"),
                     (f'path = "{tmp_path}/a.log", buffer_kb = 1', "buffer_kb"),
                     (f'path = "{tmp_path}/a.log", colour = 1', "unknown key 'colour'"),
                     ("format = \"json\"", "missing required key 'path'")):
        rc, out = run_check(base.format(al=al))
        assert rc == 2, out
        assert want in out, out
        assert re.search(r":\d+:\d+: ", out), out
    # A file that cannot be opened stops the start, with the key's place.
    cfg = tmp_path / "g.toml"
    cfg.write_text(base.format(al=f'path = "{tmp_path}/missing/dir/a.log"'))
    p = subprocess.run([BINARY, "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert "cannot open access log" in p.stderr and "No such file or directory" in p.stderr


def test_reload_moves_the_log(gateways, backend, tmp_path):
    one, two = str(tmp_path / "one.log"), str(tmp_path / "two.log")

    def config(path, fmt):
        return f"""
[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
access_log = {{ path = "{path}", format = "{fmt}" }}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend.address}" }} ]
"""
    g = Gateway(config(one, "%path"))
    gateways.append(g)
    assert get(g.address("web"), "/first")[0] == 200
    g.reload(config(two, "%status %path"))
    assert get(g.address("web"), "/second")[0] == 200
    wait_until(lambda: os.path.exists(two) and open(two).read() == "200 /second\n",
               what="the line in the new file")
    assert open(one).read() == "/first\n"
    # The old file is closed once no session of the old configuration is left.
    fds = f"/proc/{g.proc.pid}/fd"
    wait_until(lambda: all(os.readlink(os.path.join(fds, f)) != one for f in os.listdir(fds)),
               what="the old log closed")


def test_rotation_under_load_loses_no_line(gateways, backend, tmp_path):
    log = str(tmp_path / "access.log")
    sock = str(tmp_path / "admin.sock")
    g = Gateway(f"""
[global]
workers = 2

[admin]
socket = "{sock}"

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
access_log = {{ path = "{log}", format = "json" }}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend.address}" }} ]
""")
    gateways.append(g)
    addr = g.address("web")
    stop = threading.Event()
    sent = [0] * 4
    errors = []

    def client(k):
        s = socket.create_connection(addr, timeout=30)
        try:
            while not stop.is_set():
                if get(None, f"/c{k}/{sent[k]}", conn=s)[0] != 200:
                    errors.append("status")
                    return
                sent[k] += 1
                if sent[k] % 50 == 0:  # new connections too
                    s.close()
                    s = socket.create_connection(addr, timeout=30)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    os.rename(log, log + ".1")  # what logrotate does
    time.sleep(0.3)
    rc = subprocess.run([BINARY, "ctl", "--socket", sock, "--json", "reopen", "logs"],
                        capture_output=True, text=True, timeout=30)
    assert rc.returncode == 0 and json.loads(rc.stdout)["reopened"] == [log], rc
    time.sleep(0.7)
    os.rename(log, log + ".2")
    time.sleep(0.3)
    g.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: os.path.exists(log), what="reopened by SIGUSR2")
    time.sleep(0.7)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    total = sum(sent)
    rc = subprocess.run([BINARY, "ctl", "--socket", sock, "--json", "show", "stats"],
                        capture_output=True, text=True, timeout=30)
    totals = json.loads(rc.stdout)["totals"]
    assert totals["access_log_dropped"] == 0
    g.stop()  # writes what the buffers hold
    files = [log + ".1", log + ".2", log]
    lines = [read_json_lines(f) for f in files]
    assert all(lines), [len(x) for x in lines]  # every file got lines
    paths = [line["path"] for part in lines for line in part]
    assert len(paths) == total == totals["access_log_lines"], (len(paths), total)
    assert len(set(paths)) == total, "a line twice"
    for k in range(4):
        assert {p for p in paths if p.startswith(f"/c{k}/")} == \
            {f"/c{k}/{i}" for i in range(sent[k])}
    assert "access logs reopened" in g.log()
