#!/usr/bin/env python3
"""HTTP/2 from clients side by side: ExpressGateway, HAProxy 2.6, nginx 1.22
and nghttpx 1.52 (Debian's nghttp2-proxy; left out when not installed), one
worker each pinned to --proxy-cpu, h2load and the origins on
--client-cpu. Every proxy speaks HTTP/2 to the client and HTTP/1.1
(keep-alive) to the nginx origin; in the h2h2 scenario HTTP/2 to an nghttpd
(nghttp2-server) origin instead (nginx 1.22 cannot proxy to HTTP/2: it is
left out there; nghttpx runs as a second process for it, with the HTTP/2
backend, since its backends are chosen by path, not by frontend).

Scenarios, in interleaved rounds (medians reported):
  - h2c:  prior knowledge on cleartext, h2load -c16 -m10, 100-byte responses;
  - h2c64: the same with -c64;
  - h2tls: HTTP/2 over TLS 1.3 (AES-128-GCM, X25519, ECDSA P-256 everywhere),
    -c16 -m10, connections opened once;
  - h2big: one connection, one stream at a time, 1 MiB responses (proxy CPU
    per MiB);
  - h2huge: the same with 10 MiB responses;
  - h2h2: as h2c, to the HTTP/2 origin (one upstream connection per proxy
    worker carries the streams).
For each: requests/s, proxy CPU per request (scheduler accounting of the
proxy's threads) and h2load's failures (a run with any is reported as such).

Latency (--latency-rate R, default 10000; 0 skips it): expressgateway-load
--h2 in an open loop at R req/s over 16 connections of 10 streams against
each proxy's h2c listener (and h2h2 where the proxy has it), interleaved
with the rounds; p50/p99/p99.9 from the intended send times (coordinated
omission corrected), medians over the rounds.

  scripts/bench/h2_compare.py [--rounds 3] [--requests 200000] [--out DIR]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Proc, free_port, md_table, start_egw, start_haproxy, start_nginx,
                    tree_cpu_ns, wait_port)
from compare import origin_conf
from tls_compare import make_pki


def egw_conf(port, tls_port, origin, wd, h2_port, h2_origin):
    common = """protocol = "http"
cluster = "origin"
x_forwarded_for = "off"
x_forwarded_proto = false
via = false
http2_max_concurrent_streams = 128
http2_max_requests_per_connection = 1000000"""
    return f"""
[global]
workers = 1
log_level = "info"
[[listener]]
name = "h2c"
bind = "127.0.0.1:{port}"
{common}
[[listener]]
name = "h2tls"
bind = "127.0.0.1:{tls_port}"
{common}
[listener.tls]
certificates = [ {{ cert = "{wd}/site.pem", key = "{wd}/site.key" }} ]
ciphers = "TLS13-AES128-GCM-SHA256"
groups = "X25519"
min_version = "1.3"
[[listener]]
name = "h2h2"
bind = "127.0.0.1:{h2_port}"
{common.replace('cluster = "origin"', 'cluster = "h2origin"')}
[[cluster]]
name = "origin"
keep_alive_max_idle = 4096
endpoints = [ {{ address = "127.0.0.1:{origin}" }} ]
[[cluster]]
name = "h2origin"
protocol = "h2"
h2_max_streams_per_connection = 100
h2_max_connections = 4
endpoints = [ {{ address = "127.0.0.1:{h2_origin}" }} ]
"""


def haproxy_conf(port, tls_port, origin, wd, h2_port, h2_origin):
    return f"""
global
  nbthread 1
  maxconn 9000
  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-bind-curves X25519
  tune.h2.max-concurrent-streams 128
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend web
  option http-keep-alive
  bind 127.0.0.1:{port} proto h2
  bind 127.0.0.1:{tls_port} ssl crt {wd}/combined.pem alpn h2,http/1.1
  default_backend origin
backend origin
  http-reuse always
  server s1 127.0.0.1:{origin}
frontend web2
  option http-keep-alive
  bind 127.0.0.1:{h2_port} proto h2
  default_backend h2origin
backend h2origin
  http-reuse always
  server s2 127.0.0.1:{h2_origin} proto h2
"""


def nginx_conf(port, tls_port, origin, wd, h2_port=None, h2_origin=None):
    return f"""
worker_processes 1;
error_log {wd}/nginx-error.log error;
pid {wd}/nginx.pid;
events {{ worker_connections 9000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  http2_max_concurrent_streams 128;
  http2_max_requests 1000000;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{port} http2 backlog=4096;
    listen 127.0.0.1:{tls_port} ssl http2 backlog=4096;
    ssl_certificate {wd}/site.pem;
    ssl_certificate_key {wd}/site.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    ssl_ecdh_curve X25519;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def nghttpx_args(port, tls_port, backend, wd, h2_backend=False):
    """One nghttpx process, one worker: cleartext and TLS frontends (or only
    a cleartext one in front of the HTTP/2 origin)."""
    args = ["nghttpx", "--conf=/dev/null", "--workers=1", f"--frontend=127.0.0.1,{port};no-tls",
            "--frontend-http2-max-concurrent-streams=128", "--accesslog-file=/dev/null",
            f"--errorlog-file={wd}/nghttpx-error.log", "--no-via",
            "--no-ocsp", "--tls13-ciphers=TLS_AES_128_GCM_SHA256", "--tls-min-proto-version=TLSv1.3",
            "--ecdh-curves=X25519", "--backend-keep-alive-timeout=60s"]
    if h2_backend:
        args.append(f"--backend=127.0.0.1,{backend};;proto=h2")
    else:
        args.append(f"--backend=127.0.0.1,{backend}")
        args.append(f"--frontend=127.0.0.1,{tls_port}")
    args += [f"{wd}/site.key", f"{wd}/site.pem"]
    return args


SCENARIOS = {
    # name: (listener, path, connections, streams per connection, requests factor)
    "h2c": ("h2c", "/small", 16, 10, 1.0),
    "h2c64": ("h2c", "/small", 64, 10, 1.0),
    "h2tls": ("h2tls", "/small", 16, 10, 1.0),
    "h2big": ("h2c", "/1m", 1, 1, 0.002),
    "h2huge": ("h2c", "/10m", 1, 1, 0.0005),
    "h2h2": ("h2h2", "/small", 16, 10, 1.0),
}


def h2load(cpu, url, conns, streams, n):
    cmd = ["taskset", "-c", str(cpu), "h2load", "-n", str(n), "-c", str(conns), "-m",
           str(streams), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in ([\d.]+)(s|ms), ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                     out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not m or not done:
        raise RuntimeError(f"h2load: {out[-2000:]}")
    ok = int(done.group(2)) == n and int(done.group(3)) == 0 and codes and int(codes.group(1)) == n
    return float(m.group(3)), ok, out


LOADGEN = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "build", "expressgateway-load")


def loadgen(cpu, url, rate, seconds, wd):
    out = os.path.join(wd, "lat.json")
    cmd = ["taskset", "-c", str(cpu), LOADGEN, "--url", url, "--h2", "--streams", "10", "-c",
           "16", "--rate", str(int(rate)), "--duration", f"{seconds}s", "--warmup", "1s", "-q",
           "--json", out]
    subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    import json
    with open(out) as f:
        j = json.load(f)
    lat = j["latency_us"]
    return lat["p50"], lat["p99"], lat["p999"], j["errors"] == 0 and j["requests"] > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--latency-rate", type=float, default=10000)
    ap.add_argument("--latency-seconds", type=int, default=5)
    args = ap.parse_args()
    wd = tempfile.mkdtemp(prefix="egw-h2bench-")
    root = os.path.join(wd, "www")
    os.makedirs(root)
    with open(os.path.join(root, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    with open(os.path.join(root, "10m"), "wb") as f:
        f.write(os.urandom(10 << 20))
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(b"x" * 100)  # what nghttpd serves for /small (nginx returns the same)
    os.chmod(wd, 0o755)
    os.chmod(root, 0o755)
    os.chmod(os.path.join(root, "1m"), 0o644)
    os.chmod(os.path.join(root, "10m"), 0o644)
    make_pki(wd)
    origin_port = free_port()
    procs = []
    origin = start_nginx(origin_conf(origin_port, root, wd), args.client_cpu, wd + "/o")
    os.makedirs(wd + "/o", exist_ok=True)
    procs.append(origin)
    wait_port(origin_port, proc=origin)
    h2_origin_port = free_port()
    h2_origin = Proc(["nghttpd", "--no-tls", "-d", root, "--address=127.0.0.1",
                      str(h2_origin_port)], cpu=args.client_cpu)
    procs.append(h2_origin)
    wait_port(h2_origin_port, proc=h2_origin)
    targets = []
    for name, conf, start in (("ExpressGateway", egw_conf, start_egw),
                              ("HAProxy", haproxy_conf, start_haproxy),
                              ("nginx", nginx_conf, start_nginx)):
        port, tls_port, h2_port = free_port(), free_port(), free_port()
        twd = os.path.join(wd, name)
        os.makedirs(twd)
        for f in ("site.pem", "site.key", "combined.pem"):
            os.link(os.path.join(wd, f), os.path.join(twd, f))
        h2 = h2_port if name != "nginx" else None
        p = start(conf(port, tls_port, origin_port, twd, h2, h2_origin_port), args.proxy_cpu,
                  twd)
        procs.append(p)
        wait_port(port, proc=p)
        wait_port(tls_port, proc=p)
        if h2:
            wait_port(h2, proc=p)
        targets.append((name, {"h2c": port, "h2tls": tls_port, "h2h2": h2}, p))
    if shutil.which("nghttpx"):
        # Two processes (see above), one name: each serves its scenarios.
        for h2_backend in (False, True):
            port, tls_port = free_port(), free_port()
            twd = os.path.join(wd, "nghttpx-h2" if h2_backend else "nghttpx")
            os.makedirs(twd)
            for f in ("site.pem", "site.key"):
                os.link(os.path.join(wd, f), os.path.join(twd, f))
            backend = h2_origin_port if h2_backend else origin_port
            p = Proc(nghttpx_args(port, tls_port, backend, twd, h2_backend), cpu=args.proxy_cpu)
            procs.append(p)
            wait_port(port, proc=p)
            if h2_backend:
                targets.append(("nghttpx", {"h2c": None, "h2tls": None, "h2h2": port}, p))
            else:
                wait_port(tls_port, proc=p)
                targets.append(("nghttpx", {"h2c": port, "h2tls": tls_port, "h2h2": None}, p))
    else:
        print("nghttpx (nghttp2-proxy) is not installed: it is left out", flush=True)
    results = {}  # (scenario, target) -> [(rps, cpu_us_per_req, ok)]
    latency = {}  # (listener, target) -> [(p50, p99, p999, ok)]
    try:
        for r in range(args.rounds):
            for sc in args.scenarios.split(","):
                listener, path, conns, streams, factor = SCENARIOS[sc]
                n = max(100, int(args.requests * factor))
                order = targets if r % 2 == 0 else list(reversed(targets))
                for name, ports, p in order:
                    if not ports[listener]:
                        continue
                    scheme = "https" if listener == "h2tls" else "http"
                    url = f"{scheme}://127.0.0.1:{ports[listener]}{path}"
                    cpu0 = tree_cpu_ns(p.pid)
                    rps, ok, out = h2load(args.client_cpu, url, conns, streams, n)
                    if not ok:
                        lines = [l.strip() for l in out.splitlines()
                                 if l.startswith(("requests:", "status codes:"))]
                        print(f"  {name} {sc}: {'; '.join(lines)}", flush=True)
                    cpu = (tree_cpu_ns(p.pid) - cpu0) / 1e3 / n
                    results.setdefault((sc, name), []).append((rps, cpu, ok))
                    print(f"round {r + 1} {sc:6} {name:15} {rps:10.0f} req/s "
                          f"{cpu:7.2f} us/req{'' if ok else '  FAILURES'}", flush=True)
            if args.latency_rate > 0:
                order = targets if r % 2 == 0 else list(reversed(targets))
                for listener in ("h2c", "h2h2"):
                    for name, ports, p in order:
                        if not ports[listener]:
                            continue
                        url = f"http://127.0.0.1:{ports[listener]}/small"
                        lat = loadgen(args.client_cpu, url, args.latency_rate,
                                      args.latency_seconds, wd)
                        latency.setdefault((listener, name), []).append(lat)
                        print(f"round {r + 1} latency {listener:5} {name:15} p50 {lat[0]} us "
                              f"p99 {lat[1]} us p99.9 {lat[2]} us"
                              f"{'' if lat[3] else '  ERRORS'}", flush=True)
    finally:
        for p in procs:
            p.stop()
    rows = []
    for sc in args.scenarios.split(","):
        egw = results[(sc, "ExpressGateway")]
        egw_rps = statistics.median(x[0] for x in egw)
        egw_cpu = statistics.median(x[1] for x in egw)
        seen = set()
        for name, *_ in targets:
            if (sc, name) not in results or name in seen:
                continue
            seen.add(name)
            v = results[(sc, name)]
            rps = statistics.median(x[0] for x in v)
            cpu = statistics.median(x[1] for x in v)
            unit = "us/req"
            if sc in ("h2big", "h2huge"):
                # Per MiB of response (1 MiB or 10 MiB per request).
                mib = 10 if sc == "h2huge" else 1
                cpu, egw_cpu_sc = cpu / mib, egw_cpu / mib
                unit = "us/MiB"
            else:
                egw_cpu_sc = egw_cpu
            rows.append([sc, name, f"{rps:.0f}", f"{egw_rps / rps:.2f}", f"{cpu:.2f} {unit}",
                         f"{cpu / egw_cpu_sc:.2f}", "yes" if all(x[2] for x in v) else "NO"])
    table = md_table(["scenario", "proxy", "req/s (median)", "EGW / this (req/s)",
                      "proxy CPU", "this / EGW (CPU)", "all 2xx"], rows)
    if latency:
        lrows = []
        for (listener, name), v in latency.items():
            lrows.append([listener, name, f"{args.latency_rate:.0f}",
                          f"{statistics.median(x[0] for x in v) / 1000:.3f}",
                          f"{statistics.median(x[1] for x in v) / 1000:.3f}",
                          f"{statistics.median(x[2] for x in v) / 1000:.3f}",
                          "yes" if all(x[3] for x in v) else "NO"])
        table += "\n\n" + md_table(["listener", "proxy", "req/s (open loop)", "p50 ms", "p99 ms",
                                    "p99.9 ms", "no errors"], lrows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "h2_compare.md"), "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
