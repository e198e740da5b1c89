#!/usr/bin/env python3
"""L4 TCP proxying side by side: ExpressGateway (splice) vs HAProxy 2.6
`mode tcp` (splice-auto) vs the client talking to the backend directly.

Each proxy runs one worker/thread pinned to --proxy-cpu; clients and
backends share --client-cpu. Rounds are interleaved so drift hits every
target alike. Measures:
  1. iperf3, one stream, 10 s: Gbit/s and proxy CPU seconds per GB;
  2. small request/response through the L4 path (wrk, keep-alive, 100-byte
     nginx responses, c64): requests/s and proxy CPU µs per request;
  3. proxy RSS per idle connection pair with N connections held open.
Prints a Markdown report.

  scripts/bench/l4_compare.py [--rounds 3] [--seconds 10] [--idle 9000]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (EGW, Proc, free_port, md_table, rss_kb, run_wrk, start_egw, start_haproxy,
                    start_nginx, tree_cpu_ns, wait_port)


def egw_l4_config(listen, backend, max_sessions=100000, max_pipes=1024):
    return f"""
[global]
workers = 1
max_sessions = {max_sessions}
max_pipes = {max_pipes}
[[listener]]
name = "l4"
bind = "127.0.0.1:{listen}"
protocol = "tcp"
cluster = "b"
client_idle_timeout_ms = 600000
[[cluster]]
name = "b"
server_idle_timeout_ms = 600000
endpoints = [ {{ address = "127.0.0.1:{backend}" }} ]
"""


def haproxy_l4_config(listen, backend, maxconn=9700):
    return f"""
global
  nbthread 1
  maxconn {maxconn}
  # RLIMIT_NOFILE is capped at 20,000 here: 2 fds per connection plus pipes.
  maxpipes 100
defaults
  mode tcp
  timeout connect 2s
  timeout client 600s
  timeout server 600s
  option splice-auto
frontend f
  bind 127.0.0.1:{listen}
  default_backend b
backend b
  server s1 127.0.0.1:{backend}
"""


def nginx_origin_config(port, workdir):
    body = "x" * 100
    return f"""
worker_processes 1;
error_log {workdir}/error.log error;
pid {workdir}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ return 200 "{body}"; }}
  }}
}}
"""


class Targets:
    """Starts the proxies for one backend port; yields (name, port, pid)."""

    def __init__(self, backend_port, proxy_cpu, workdir, **kw):
        self.procs = []
        self.list = [("direct", backend_port, None)]
        p = free_port()
        e = start_egw(egw_l4_config(p, backend_port, **kw.get("egw", {})), proxy_cpu, workdir)
        wait_port(p)
        self.procs.append(e)
        self.list.append(("ExpressGateway", p, e.pid))
        if kw.get("copy_variant"):
            p = free_port()
            c = start_egw(egw_l4_config(p, backend_port, max_pipes=0), proxy_cpu, workdir)
            wait_port(p)
            self.procs.append(c)
            self.list.append(("ExpressGateway (copy)", p, c.pid))
        p = free_port()
        h = start_haproxy(haproxy_l4_config(p, backend_port, **kw.get("haproxy", {})), proxy_cpu,
                          workdir)
        wait_port(p)
        self.procs.append(h)
        self.list.append(("HAProxy", p, h.pid))

    def stop(self):
        for p in self.procs:
            p.stop()


def iperf3(args, rounds, seconds):
    with tempfile.TemporaryDirectory() as wd:
        backend_port = free_port()
        server = Proc(["iperf3", "-s", "-p", str(backend_port)], cpu=args.client_cpu)
        wait_port(backend_port)
        t = Targets(backend_port, args.proxy_cpu, wd, copy_variant=True)
        results = {name: [] for name, _, _ in t.list}
        try:
            for _ in range(rounds):
                for name, port, pid in t.list:
                    cpu0 = tree_cpu_ns(pid) if pid else 0
                    out = subprocess.run(["taskset", "-c", str(args.client_cpu), "iperf3", "-c",
                                          "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"],
                                         capture_output=True, text=True, timeout=seconds + 30)
                    cpu1 = tree_cpu_ns(pid) if pid else 0
                    j = json.loads(out.stdout)
                    end = j["end"]["sum_received"]
                    gbit = end["bits_per_second"] / 1e9
                    gb = end["bytes"] / 1e9
                    results[name].append((gbit, (cpu1 - cpu0) / 1e9 / gb if pid else 0))
        finally:
            t.stop()
            server.stop()
    return results


def wrk_rr(args, rounds, seconds):
    with tempfile.TemporaryDirectory() as wd:
        backend_port = free_port()
        origin = start_nginx(nginx_origin_config(backend_port, wd), args.client_cpu, wd)
        wait_port(backend_port)
        t = Targets(backend_port, args.proxy_cpu, wd, copy_variant=True)
        results = {name: [] for name, _, _ in t.list}
        try:
            for _ in range(rounds):
                for name, port, pid in t.list:
                    cpu0 = tree_cpu_ns(pid) if pid else 0
                    r = run_wrk(args.client_cpu, seconds, f"http://127.0.0.1:{port}/", 64)
                    cpu1 = tree_cpu_ns(pid) if pid else 0
                    if r.failures:
                        raise SystemExit(f"{name}: {r.failures} wrk failures: not reporting")
                    results[name].append((r.rps, (cpu1 - cpu0) / 1e3 / r.requests if pid else 0,
                                          r.p99_ms))
        finally:
            t.stop()
            origin.stop()
    return results


def idle_rss(args, n):
    """Proxy RSS growth per idle connection pair with n connections open."""

    class Holder:
        def __init__(self):
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(4096)
            self.port = self.sock.getsockname()[1]
            self.conns = []
            threading.Thread(target=self.run, daemon=True).start()

        def run(self):
            while True:
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    return
                self.conns.append(c)

    out = {}
    with tempfile.TemporaryDirectory() as wd:
        holder = Holder()
        t = Targets(holder.port, args.proxy_cpu, wd, egw={"max_sessions": n + 100},
                    haproxy={"maxconn": min(n + 100, 9700)})
        try:
            for name, port, pid in t.list[1:]:
                before = rss_kb(pid)
                clients = []
                for _ in range(n):
                    clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                deadline = time.monotonic() + 30
                while len(holder.conns) < n and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1)
                after = rss_kb(pid)
                got = len(holder.conns)
                out[name] = ((after - before) * 1024 / n, got)
                for c in clients:
                    c.close()
                for c in holder.conns:
                    c.close()
                holder.conns = []
                time.sleep(1)
        finally:
            t.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma list of: iperf,wrk,rss")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    print(f"# L4 comparison ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"proxy on CPU {args.proxy_cpu}, clients/backends on CPU {args.client_cpu}, "
          f"{args.rounds} interleaved rounds of {args.seconds} s, medians)\n")
    med = statistics.median
    if "iperf" not in skip:
        r = iperf3(args, args.rounds, args.seconds)
        d = med(x[0] for x in r["direct"])
        h = med(x[0] for x in r["HAProxy"])
        rows = []
        for name in r:
            g = med(x[0] for x in r[name])
            cpu = med(x[1] for x in r[name])
            rows.append([name, f"{g:.2f}", f"{g / d:.2f}", f"{g / h:.2f}",
                         f"{cpu:.3f}" if name != "direct" else "-"])
        print("## iperf3, 1 stream\n")
        print(md_table(["target", "Gbit/s", "x direct", "x HAProxy", "proxy CPU s/GB"], rows))
        print()
    if "wrk" not in skip:
        r = wrk_rr(args, args.rounds, args.seconds)
        d = med(x[0] for x in r["direct"])
        h = med(x[0] for x in r["HAProxy"])
        rows = []
        for name in r:
            rps = med(x[0] for x in r[name])
            rows.append([name, f"{rps:.0f}", f"{rps / d:.2f}", f"{rps / h:.2f}",
                         f"{med(x[1] for x in r[name]):.1f}" if name != "direct" else "-",
                         f"{med(x[2] for x in r[name]):.2f}"])
        print("## Small request/response through L4 (wrk -c64, 100-byte nginx responses)\n")
        print(md_table(["target", "req/s", "x direct", "x HAProxy", "proxy CPU us/req",
                        "p99 ms"], rows))
        print()
    if "rss" not in skip:
        r = idle_rss(args, args.idle)
        rows = [[name, f"{v[0]:.0f}", v[1]] for name, v in r.items()]
        print(f"## Proxy RSS per idle L4 connection pair ({args.idle} connections)\n")
        print(md_table(["proxy", "bytes per pair", "pairs reached the backend"], rows))
        print()


if __name__ == "__main__":
    main()
