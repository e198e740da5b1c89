"""GET /metrics ([admin] metrics): the Prometheus text format checked by
promtool, counters that match the traffic a test sent, the latency
histograms, a real Prometheus server scraping the gateway, and a scrape
endpoint that a bad client cannot stall or break."""
import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from egwtest import Gateway, run_check, wait_until
from httptest import http_exchange
from loadtest import free_port

pytestmark = pytest.mark.usefixtures("clean_exit")


def config(backend_addr, extra=""):
    return f"""
[global]
workers = 2

[admin]
metrics = "127.0.0.1:0"

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
cluster = "app"
{extra}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend_addr}" }}, {{ address = "127.0.0.1:1", weight = 0 }} ]
"""


def metrics_address(g):
    m = re.search(r"metrics: http://([\d.]+):(\d+)/metrics", g.log())
    assert m, g.log()
    return m.group(1), int(m.group(2))


def scrape(g, path="/metrics"):
    host, port = metrics_address(g)
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.read().decode()


def settled(g, name, labels, want, timeout=10):
    """Scrapes until `name{labels}` reads `want`: what workers publish (the
    histograms, responses by listener and cluster, ring counters) is at most
    a publication interval (250 ms) old. Returns that scrape."""
    last = []

    def ok():
        last[:] = [scrape(g)]
        m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", last[0], re.M)
        return m is not None and float(m.group(1)) == want

    wait_until(ok, timeout, interval=0.05, what=f"{name}{labels} == {want}")
    return last[0]


def value(text, name, labels=""):
    pat = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.M)
    m = pat.search(text)
    assert m, f"{name}{labels} not in:\n{text[:3000]}"
    return float(m.group(1))


def send_requests(g, n):
    addr = g.address("web")
    s = socket.create_connection(addr, timeout=10)
    for i in range(n):
        s.sendall(f"GET /r{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        data = b""
        while b"hello" not in data:
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    s.close()


def test_promtool_accepts_the_output_and_counters_match_the_traffic(gateways, backend):
    g = Gateway(config(backend.address))
    gateways.append(g)
    send_requests(g, 37)
    text = settled(g, "egw_cluster_phase_seconds_count", '{cluster="app",phase="total"}', 37)
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert value(text, "egw_http_requests_total") == 37
    assert value(text, "egw_http_responses_total", '{class="2xx"}') == 37
    assert value(text, "egw_sessions_accepted_total") == 1
    assert value(text, "egw_workers") == 2
    assert value(text, "egw_config_generation") == 1
    assert value(text, "egw_worker_responsive", '{worker="0"}') == 1
    assert value(text, "egw_worker_responsive", '{worker="1"}') == 1
    ep = f'{{cluster="app",endpoint="{backend.address}"}}'
    assert value(text, "egw_endpoint_up", ep) == 1
    assert value(text, "egw_endpoint_sessions_total", ep) == 37
    assert value(text, "egw_endpoint_active", ep) == 0
    # The histograms: every request in ttfb and total, for the listener and
    # the cluster; cumulative buckets end at the count.
    for fam, key in (("egw_listener_phase_seconds", 'listener="web"'),
                     ("egw_cluster_phase_seconds", 'cluster="app"')):
        for phase in ("ttfb", "total"):
            lab = f'{{{key},phase="{phase}"}}'
            assert value(text, f"{fam}_count", lab) == 37, (fam, phase)
            assert value(text, f"{fam}_bucket", f'{{{key},phase="{phase}",le="+Inf"}}') == 37
            assert value(text, f"{fam}_bucket", f'{{{key},phase="{phase}",le="30"}}') == 37
            assert 0 < value(text, f"{fam}_sum", lab) < 37 * 5
    assert value(text, "egw_uring_enters_total") > 0
    assert value(text, "process_open_fds") > 5
    assert value(text, "process_resident_memory_bytes") > 1 << 20
    # A reload is seen.
    g.reload()
    assert value(scrape(g), "egw_config_generation") == 2


def test_responses_by_listener_cluster_protocol_and_class(gateways, backend):
    extra = """
[[listener.route]]
match = { path_prefix = "/dead" }
cluster = "dead"
"""
    cfg = config(backend.address, extra) + """
[[cluster]]
name = "dead"
retries = 0
endpoints = [ { address = "127.0.0.1:1" } ]
"""
    g = Gateway(cfg)
    gateways.append(g)
    send_requests(g, 5)
    host, port = g.address("web")
    out = subprocess.run(["nghttp", "-n", f"http://{host}:{port}/a", f"http://{host}:{port}/b",
                          f"http://{host}:{port}/c"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    dead = http_exchange((host, port), b"GET /dead HTTP/1.1\r\nHost: t\r\n\r\n",
                         read_until_close=False)
    assert dead.startswith(b"HTTP/1.1 50"), dead
    text = settled(g, "egw_cluster_responses_total",
                   '{cluster="dead",protocol="http1",class="5xx"}', 1)
    lab = lambda k, n, p, c: f'{{{k}="{n}",protocol="{p}",class="{c}"}}'  # noqa: E731
    assert value(text, "egw_listener_responses_total", lab("listener", "web", "http1", "2xx")) == 5
    assert value(text, "egw_listener_responses_total", lab("listener", "web", "h2", "2xx")) == 3
    assert value(text, "egw_listener_responses_total", lab("listener", "web", "http1", "5xx")) == 1
    # The cluster counts what was routed to it, by the protocol spoken to
    # its endpoints (HTTP/1.1 here, for the HTTP/2 clients too).
    assert value(text, "egw_cluster_responses_total", lab("cluster", "app", "http1", "2xx")) == 8
    assert value(text, "egw_cluster_responses_total", lab("cluster", "app", "h2", "2xx")) == 0
    assert value(text, "egw_cluster_responses_total", lab("cluster", "dead", "http1", "5xx")) == 1
    assert value(text, "egw_cluster_responses_total", lab("cluster", "app", "http1", "5xx")) == 0


def test_other_paths_methods_and_stalled_clients(gateways, backend):
    g = Gateway(config(backend.address))
    gateways.append(g)
    host, port = metrics_address(g)
    assert b"404 Not Found" in http_exchange((host, port), b"GET / HTTP/1.1\r\nHost: m\r\n\r\n")
    assert b"405 Method Not Allowed" in http_exchange(
        (host, port), b"POST /metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n")
    assert b"400 Bad Request" in http_exchange((host, port), b"garbage\r\n\r\n")
    assert b"431" in http_exchange((host, port), b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 2000)
    head = http_exchange((host, port), b"HEAD /metrics HTTP/1.1\r\nHost: m\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n"), head[:200]
    # A client that connects and says nothing holds the endpoint at most 2 s.
    idle = socket.create_connection((host, port))
    t0 = time.monotonic()
    text = scrape(g)
    assert time.monotonic() - t0 < 4
    assert "egw_build_info" in text
    idle.close()
    # The gateway itself never noticed.
    assert b"hello" in http_exchange(g.address("web"), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                                     read_until_close=False)


def test_a_real_prometheus_scrapes_the_gateway(gateways, backend, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (Debian's prometheus package)")
    g = Gateway(config(backend.address))
    gateways.append(g)
    host, port = metrics_address(g)
    send_requests(g, 21)
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: egw
    static_configs:
      - targets: ["{host}:{port}"]
""")
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def query(q):
            url = f"http://127.0.0.1:{web}/api/v1/query?query={urllib.parse.quote(q)}"
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
            except OSError:
                return None
            return float(res[0]["value"][1]) if res else None

        wait_until(lambda: query('up{job="egw"}') == 1, 60, interval=0.5,
                   what="prometheus sees the gateway up")
        wait_until(lambda: query('egw_http_requests_total{job="egw"}') == 21, 30, interval=0.5,
                   what="the request counter in prometheus")
        assert query('egw_endpoint_up{job="egw",cluster="app"}') == 1
        assert query('egw_listener_phase_seconds_count{job="egw",listener="web",phase="total"}') == 21
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()


def test_configuration_errors():
    base = """
[admin]
{admin}

[[listener]]
name = "a"
bind = "127.0.0.1:0"
protocol = "http"

[[listener.route]]
match = {{}}
respond = {{ status = 200 }}
"""
    for admin, want in (('metrics = "localhost:9145"', "bad metrics address 'localhost:9145'"),
                        ("metrics = 9145", "metrics address must be a string"),
                        ('sockets = "/run/x.sock"', "unknown key 'sockets' in [admin]; did you "
                                                    "mean 'socket'?")):
        rc, out = run_check(base.format(admin=admin))
        assert rc != 0, out
        assert want in out, out
        assert re.search(r":\d+:\d+: ", out), out
