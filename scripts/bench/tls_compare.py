#!/usr/bin/env python3
"""TLS termination side by side: ExpressGateway (wolfSSL), HAProxy 2.6 and
nginx 1.22 (OpenSSL 3.0), one worker each pinned to --proxy-cpu, the clients
and the plain nginx origin on --client-cpu. All three serve the same ECDSA
P-256 certificate with TLS 1.3, TLS_AES_128_GCM_SHA256 and X25519, so the
same work is asked of each.

Measured, in interleaved rounds (medians reported):
  - full handshakes: wrk with "Connection: close" (one TLS 1.3 handshake and
    one request per connection), connections/s and proxy CPU per connection;
  - full and resumed handshakes: `openssl s_time -new` / `-reuse`
    (one client, sequential), connections/s and proxy CPU per connection;
  - keep-alive HTTPS requests: wrk -c64, 100-byte responses;
  - bulk: wrk -c4 over 1 MiB responses, MB/s and proxy CPU per MB;
and once per target: RSS per idle TLS connection with --idle connections
held open after their handshake.

  scripts/bench/tls_compare.py [--rounds 3] [--seconds 5] [--idle 10000] [--out DIR]
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Proc, children, free_port, md_table, rss_kb, run_wrk, start_egw,
                    start_haproxy, start_nginx, tree_cpu_ns, wait_port)
from compare import origin_conf

CIPHER_WOLF = "TLS13-AES128-GCM-SHA256"
CIPHER_OSSL = "TLS_AES_128_GCM_SHA256"


def make_pki(wd):
    def run(*a):
        subprocess.run(a, cwd=wd, check=True, capture_output=True, timeout=60)

    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", "ca.key")
    run("openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Bench CA", "-days",
        "2", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE")
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", "site.key")
    run("openssl", "req", "-new", "-key", "site.key", "-subj", "/CN=bench.test", "-out",
        "site.csr")
    with open(os.path.join(wd, "site.ext"), "w") as f:
        f.write("subjectAltName=DNS:bench.test\n")
    run("openssl", "x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "site.pem", "-extfile", "site.ext")
    with open(os.path.join(wd, "combined.pem"), "w") as o:
        for name in ("site.pem", "site.key"):
            with open(os.path.join(wd, name)) as f:
                o.write(f.read())


def egw_conf(port, origin, wd, forced=True):
    ciphers = f'ciphers = "{CIPHER_WOLF}"' if forced else ""
    return f"""
[global]
workers = 1
log_level = "info"
[[listener]]
name = "web"
bind = "127.0.0.1:{port}"
protocol = "http"
cluster = "origin"
x_forwarded_for = "off"
x_forwarded_proto = false
via = false
[listener.tls]
certificates = [ {{ cert = "{wd}/site.pem", key = "{wd}/site.key" }} ]
{ciphers}
groups = "X25519"
min_version = "1.3"
[[cluster]]
name = "origin"
keep_alive_max_idle = 4096
endpoints = [ {{ address = "127.0.0.1:{origin}" }} ]
"""


def haproxy_conf(port, origin, wd):
    return f"""
global
  nbthread 1
  maxconn 9800
  ssl-default-bind-ciphersuites {CIPHER_OSSL}
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-bind-curves X25519
defaults
  timeout connect 2s
  timeout client 120s
  timeout server 120s
frontend web
  mode http
  option http-keep-alive
  bind 127.0.0.1:{port} ssl crt {wd}/combined.pem alpn http/1.1
  default_backend origin
backend origin
  mode http
  http-reuse always
  server s1 127.0.0.1:{origin}
"""


def nginx_conf(port, origin, wd):
    return f"""
worker_processes 1;
worker_rlimit_nofile 20000;
error_log {wd}/nginx-tls-error.log error;
pid {wd}/nginx-tls.pid;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{port} ssl backlog=4096;
    ssl_certificate {wd}/site.pem;
    ssl_certificate_key {wd}/site.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites {CIPHER_OSSL};
    ssl_ecdh_curve X25519;
    ssl_session_tickets on;
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


class Target:
    def __init__(self, name, port, proc, pid, only=None):
        self.name, self.port, self.proc, self.pid = name, port, proc, pid
        self.only = only  # measure only these (None: all)


def wrk(args, url, conns, header=None):
    r = run_wrk(args.client_cpu, args.seconds, url, conns, header)
    if r.failures:
        print(f"wrk {url}: {r.out}", file=sys.stderr)
    return r.requests, r.rps, r.mbs, r.failures


def s_time(args, port, mode):
    cmd = ["taskset", "-c", str(args.client_cpu), "openssl", "s_time", "-connect",
           f"127.0.0.1:{port}", mode, "-time", str(args.seconds), "-www", "/small"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 3 + 60)
    m = re.findall(r"(\d+) connections in ([\d.]+) real seconds", out.stdout)
    if not m:
        raise RuntimeError(f"s_time {mode}: {out.stdout}{out.stderr}")
    n, secs = int(m[-1][0]), float(m[-1][1])
    return n, n / secs


def measure(args, t):
    url = f"https://127.0.0.1:{t.port}"
    r = {}
    if t.only == "bulk":
        c0 = tree_cpu_ns(t.pid)
        n, rps, mbs, f3 = wrk(args, url + "/1m", 4)
        c1 = tree_cpu_ns(t.pid)
        r["bulk"] = (mbs, (c1 - c0) / 1e3 / max(mbs * args.seconds, 1), f3)
        return r
    c0 = tree_cpu_ns(t.pid)
    n, rps, _, f1 = wrk(args, url + "/small", 32, "Connection: close")
    c1 = tree_cpu_ns(t.pid)
    r["newconn"] = (rps, (c1 - c0) / 1e3 / n, f1)
    for mode in ("-new", "-reuse"):
        c0 = tree_cpu_ns(t.pid)
        n, cps = s_time(args, t.port, mode)
        c1 = tree_cpu_ns(t.pid)
        r[mode] = (cps, (c1 - c0) / 1e3 / max(n, 1), 0)
    c0 = tree_cpu_ns(t.pid)
    n, rps, _, f2 = wrk(args, url + "/small", 64)
    c1 = tree_cpu_ns(t.pid)
    r["keepalive"] = (rps, (c1 - c0) / 1e3 / n, f2)
    c0 = tree_cpu_ns(t.pid)
    n, rps, mbs, f3 = wrk(args, url + "/1m", 4)
    c1 = tree_cpu_ns(t.pid)
    r["bulk"] = (mbs, (c1 - c0) / 1e3 / max(mbs * args.seconds, 1), f3)
    return r


def idle_rss(t, count, wd):
    """Opens `count` TLS connections (handshake done, one request each so
    every proxy has set the session up fully) and holds them; returns the
    proxy's RSS growth per connection (bytes)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(wd, "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(0.5)
    before = rss_kb(t.pid)
    conns = []
    try:
        for i in range(count):
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", t.port), timeout=10),
                                    server_hostname="bench.test")
                s.sendall(b"GET /small HTTP/1.1\r\nHost: bench.test\r\n\r\n")
                got = b""
                while b"x" * 100 not in got:
                    d = s.recv(4096)
                    if not d:
                        raise ConnectionError("closed")
                    got += d
            except (OSError, ssl.SSLError) as e:
                print(f"{t.name}: connection {i + 1} failed ({e}); measuring {i}",
                      file=sys.stderr)
                if hasattr(t.proc, "output"):  # the proxy's last words
                    print("\n".join(t.proc.output().splitlines()[-10:]), file=sys.stderr)
                break
            conns.append(s)
        time.sleep(1.0)
        after = rss_kb(t.pid)
        return (after - before) * 1024 / max(len(conns), 1), len(conns)
    finally:
        for s in conns:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the idle connections
    outdir = args.out or os.path.join("bench-out", "tls-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    wd = tempfile.mkdtemp(prefix="egw-tls-bench-")
    os.chmod(wd, 0o755)  # nginx workers (another user) read the origin's files
    root = os.path.join(wd, "root")
    os.makedirs(root)
    with open(os.path.join(root, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    make_pki(wd)
    procs = []
    try:
        origin_port = free_port()
        origin = start_nginx(origin_conf(origin_port, root, wd), args.client_cpu, wd)
        procs.append(origin)
        wait_port(origin_port)
        targets = []
        p = free_port()
        e = start_egw(egw_conf(p, origin_port, wd), args.proxy_cpu, wd)
        procs.append(e)
        wait_port(p, proc=procs[-1])
        targets.append(Target("ExpressGateway", p, e, e.pid))
        p = free_port()
        h = start_haproxy(haproxy_conf(p, origin_port, wd), args.proxy_cpu, wd)
        procs.append(h)
        wait_port(p, proc=procs[-1])
        targets.append(Target("HAProxy", p, h, h.pid))
        p = free_port()
        nwd = os.path.join(wd, "nginx-tls")
        os.makedirs(nwd)
        n = start_nginx(nginx_conf(p, origin_port, wd), args.proxy_cpu, nwd)
        procs.append(n)
        wait_port(p, proc=procs[-1])
        time.sleep(0.5)
        workers = children(n.pid)
        targets.append(Target("nginx", p, n, workers[0] if workers else n.pid))
        # The gateway with its default cipher order (ChaCha20-Poly1305 first
        # where wolfCrypt lacks AES-NI), for bulk only.
        p = free_port()
        os.makedirs(os.path.join(wd, "d"))
        ed = start_egw(egw_conf(p, origin_port, os.path.join(wd, "d"), forced=False).replace(
            f"{wd}/d/", f"{wd}/"), args.proxy_cpu, os.path.join(wd, "d"))
        procs.append(ed)
        wait_port(p, proc=procs[-1])
        targets.append(Target("ExpressGateway, default ciphers", p, ed, ed.pid, only="bulk"))
        # What each negotiates.
        negotiated = {}
        for t in targets:
            out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{t.port}",
                                  "-servername", "bench.test"], input=b"", capture_output=True,
                                 timeout=20).stdout.decode(errors="replace")
            m = re.search(r"New, (\S+), Cipher is (\S+)", out)
            g = re.search(r"Server Temp Key: (\S+)", out)
            negotiated[t.name] = f"{m.group(1)} {m.group(2)} {g.group(1) if g else ''}".strip()
        results = {t.name: [] for t in targets}
        for _ in range(args.rounds):
            for t in targets:
                results[t.name].append(measure(args, t))
        for name, runs in results.items():
            for r in runs:
                bad = {k: v[2] for k, v in r.items() if v[2]}
                if bad:
                    raise SystemExit(f"{name}: failed requests {bad}: not reporting")
        rss = {t.name: idle_rss(t, args.idle, wd) for t in targets if not t.only}
        os.kill(e.pid, signal.SIGUSR1)
        time.sleep(0.5)
        egw_log = e.output()
        res = re.findall(r"tls: (\d+) handshakes \((\d+) resumed\)", egw_log)

        def med(name, key, i):
            return statistics.median(r[key][i] for r in results[name])

        rows = []
        for key, label, unit in (("newconn", "full handshake + request (wrk -c32, Connection: "
                                  "close)", "conn/s"),
                                 ("-new", "full handshakes (s_time -new, 1 client)", "conn/s"),
                                 ("-reuse", "resumed handshakes (s_time -reuse, 1 client)",
                                  "conn/s"),
                                 ("keepalive", "keep-alive HTTPS requests (wrk -c64, 100 B)",
                                  "req/s"),
                                 ("bulk", "bulk (wrk -c4, 1 MiB responses)", "MB/s")):
            hap = med("HAProxy", key, 0)
            for name in results:
                if key not in results[name][0]:
                    continue
                v, cpu = med(name, key, 0), med(name, key, 1)
                per = "us/MB" if key == "bulk" else "us"
                rows.append([label, name, f"{v:.0f} {unit}", f"{v / hap:.2f}",
                             f"{cpu:.1f} {per}", f"{cpu / med('HAProxy', key, 1):.2f}"])
        report = [
            f"# TLS side by side ({time.strftime('%Y-%m-%d %H:%M')}): one proxy worker on CPU "
            f"{args.proxy_cpu}; clients and the nginx origin on CPU {args.client_cpu}; "
            f"{args.rounds} interleaved rounds of {args.seconds} s, medians.\n",
            f"Command: `scripts/bench/tls_compare.py --rounds {args.rounds} --seconds "
            f"{args.seconds} --idle {args.idle}`\n",
            "Negotiated: " + "; ".join(f"{k}: {v}" for k, v in negotiated.items()) + "\n",
            md_table(["measure", "target", "rate", "x HAProxy", "proxy CPU per unit",
                      "CPU x HAProxy"], rows),
            "",
            f"RSS per idle TLS connection (up to {args.idle} connections, after one request "
            "each): " + ", ".join(f"{k} {v[0]:.0f} B ({v[1]} connections)"
                                   for k, v in rss.items()) + "\n",
        ]
        if res:
            report.append(f"ExpressGateway's own count at the end: {res[-1][0]} handshakes, "
                          f"{res[-1][1]} resumed.\n")
        text = "\n".join(report)
        with open(os.path.join(outdir, "report.md"), "w") as f:
            f.write(text)
        print(text)
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
