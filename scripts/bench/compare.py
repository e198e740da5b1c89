#!/usr/bin/env python3
"""ExpressGateway, HAProxy 2.6 and nginx 1.22 side by side, with one command.

Starts an nginx origin (one worker, --client-cpu) and the three proxies (one
worker/thread each, all pinned to --proxy-cpu), then for each scenario and
target, in interleaved rounds:
  - throughput, closed loop: wrk (requests/s, MB/s);
  - latency, open loop: expressgateway-load at a fixed rate (p50/p99/p99.9,
    coordinated omission corrected), with its HdrHistogram output for a plot;
  - proxy CPU per request (scheduler accounting of every proxy thread);
  - proxy system calls per request (perf stat -e raw_syscalls:sys_enter);
  - for ExpressGateway, the engine's SQEs, CQEs and io_uring_enter calls per
    request (SIGUSR1 counter dumps before and after).
It checks that every proxy really served the load (no errors, no non-2xx)
before reporting, and writes a Markdown report plus one PNG latency plot per
scenario (gnuplot) into --out.

  scripts/bench/compare.py [--rounds 3] [--seconds 5] [--rate 10000]
                           [--scenarios small,small16,small256,64k,1m,newconn,https,l4]
                           [--baseline BINARY] [--only-egw] [--out DIR]

--baseline runs a second ExpressGateway from BINARY (an earlier build) as
one more target in the same interleaved rounds, for before/after figures;
--only-egw leaves HAProxy and nginx out.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BUILD, EGW, Proc, children, free_port, md_table, start_egw, start_haproxy,
                    start_nginx, tree_cpu_ns, wait_port)
from common import run_wrk as common_run_wrk

LOADGEN = os.path.join(BUILD, "expressgateway-load")

SCENARIOS = {
    # name: (path, wrk connections, open-loop rate factor, extra wrk header, kind)
    "small": ("/small", 64, 1.0, None, "http"),
    "small16": ("/small", 16, 1.0, None, "http"),
    "small256": ("/small", 256, 1.0, None, "http"),
    "64k": ("/64k", 64, 0.05, None, "http"),
    "1m": ("/1m", 16, 0.005, None, "http"),
    "newconn": ("/small", 64, 0.25, "Connection: close", "http"),
    # TLS 1.3 keep-alive (each proxy terminates; AES-128-GCM, X25519, ECDSA
    # P-256 everywhere: the same work asked of each).
    "https": ("/small", 64, 0.8, None, "https"),
    "l4": ("/small", 64, 1.0, None, "l4"),
}


def origin_conf(port, root, wd, tls_port=None):
    tls = ""
    if tls_port:
        tls = f"""
  server {{
    listen 127.0.0.1:{tls_port} ssl backlog=4096 reuseport;
    ssl_certificate {wd}/site.pem;
    ssl_certificate_key {wd}/site.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    ssl_ecdh_curve X25519;
    root {root};
    location = /small {{ return 200 "{'x' * 100}"; }}
  }}"""
    return f"""
worker_processes 1;
error_log {wd}/origin-error.log error;
pid {wd}/origin.pid;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {{
    listen 127.0.0.1:{port} backlog=4096 reuseport;
    root {root};
    location = /small {{ return 200 "{'x' * 100}"; }}
  }}{tls}
}}
"""


def egw_conf(http_port, l4_port, origin, tls_port, wd):
    return f"""
[global]
workers = 1
log_level = "info"
[[listener]]
name = "web"
bind = "127.0.0.1:{http_port}"
protocol = "http"
cluster = "origin"
x_forwarded_for = "off"
x_forwarded_proto = false
via = false
[[listener]]
name = "webtls"
bind = "127.0.0.1:{tls_port}"
protocol = "http"
cluster = "origin"
x_forwarded_for = "off"
x_forwarded_proto = false
via = false
[listener.tls]
certificates = [ {{ cert = "{wd}/site.pem", key = "{wd}/site.key" }} ]
ciphers = "TLS13-AES128-GCM-SHA256"
groups = "X25519"
min_version = "1.3"
[[listener]]
name = "l4"
bind = "127.0.0.1:{l4_port}"
protocol = "tcp"
cluster = "origin"
[[cluster]]
name = "origin"
keep_alive_max_idle = 4096
endpoints = [ {{ address = "127.0.0.1:{origin}" }} ]
"""


def haproxy_conf(http_port, l4_port, origin, tls_port, wd):
    return f"""
global
  nbthread 1
  maxconn 9000
  maxpipes 100
  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-bind-curves X25519
defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend web
  mode http
  option http-keep-alive
  bind 127.0.0.1:{http_port}
  bind 127.0.0.1:{tls_port} ssl crt {wd}/combined.pem alpn http/1.1
  default_backend origin_http
backend origin_http
  mode http
  http-reuse always
  server s1 127.0.0.1:{origin}
frontend l4
  mode tcp
  option splice-auto
  bind 127.0.0.1:{l4_port}
  default_backend origin_tcp
backend origin_tcp
  mode tcp
  server s1 127.0.0.1:{origin}
"""


def nginx_proxy_conf(http_port, l4_port, origin, wd, tls_port, pki):
    return f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
error_log {wd}/nginx-error.log error;
pid {wd}/nginx.pid;
events {{ worker_connections 9000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{http_port} backlog=4096;
    listen 127.0.0.1:{tls_port} ssl backlog=4096;
    ssl_certificate {pki}/site.pem;
    ssl_certificate_key {pki}/site.key;
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
stream {{
  server {{ listen 127.0.0.1:{l4_port}; proxy_pass 127.0.0.1:{origin}; }}
}}
"""


class Target:
    def __init__(self, name, http_port, l4_port, tls_port, proc=None, worker_pid=None):
        self.name = name
        self.http_port = http_port
        self.l4_port = l4_port
        self.tls_port = tls_port
        self.proc = proc
        self.worker_pid = worker_pid  # the process that does the proxying


def perf_available():
    try:
        p = subprocess.run(["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"],
                           capture_output=True, text=True, timeout=10)
        return "sys_enter" in p.stderr and "not supported" not in p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return False


def egw_counters(t):
    """Asks the gateway to log its counters (SIGUSR1) and returns the sums
    (enters, sqes, cqes, http requests) from the newest dump."""
    before = t.proc.output().count("sqes by op")
    os.kill(t.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and t.proc.output().count("sqes by op") <= before:
        time.sleep(0.02)
    out = t.proc.output()
    stats = re.findall(r"engine: (\d+) enters, (\d+) sqes, (\d+) cqes", out)[-1]
    reqs = re.findall(r"http: (\d+) requests", out)[-1]
    return {"enters": int(stats[0]), "sqes": int(stats[1]), "cqes": int(stats[2]),
            "requests": int(reqs)}


def run_wrk(args, url, conns, header):
    r = common_run_wrk(args.client_cpu, args.seconds, url, conns, header)
    return r.requests, r.rps, r.mbs, r.failures


def run_loadgen(args, url, rate, conns, header, hdr_path):
    cmd = ["taskset", "-c", str(args.client_cpu), LOADGEN, "--url", url, "--rate", str(int(rate)),
           "--duration", f"{args.seconds}s", "--warmup", "1s", "-c", str(conns), "-q",
           "--json", hdr_path + ".json", "--hdr", hdr_path]
    if url.startswith("https:"):
        cmd += ["--cacert", args.ca, "--sni", "bench.test"]
    if header:
        cmd += ["--new-connection-per-request"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
    with open(hdr_path + ".json") as f:
        j = json.load(f)
    return j


def measure(args, target, scen, rate, outdir, round_no, perf):
    path, conns, _, header, kind = SCENARIOS[scen]
    l4 = kind == "l4"
    port = {"l4": target.l4_port, "https": target.tls_port}.get(kind, target.http_port)
    url = f"{'https' if kind == 'https' else 'http'}://127.0.0.1:{port}{path}"
    pid = target.worker_pid
    # Throughput and CPU, with nothing attached to the proxy.
    cpu0 = tree_cpu_ns(pid) if pid else 0
    eg0 = egw_counters(target) if target.name.startswith("ExpressGateway") else None
    n, rps, mbs, failures = run_wrk(args, url, conns, header)
    cpu1 = tree_cpu_ns(pid) if pid else 0
    eg = None
    if eg0:
        eg1 = egw_counters(target)
        d = max(eg1["requests"] - eg0["requests"] if not l4 else n, 1)
        eg = {k: (eg1[k] - eg0[k]) / d for k in ("enters", "sqes", "cqes")}
    # System calls in a separate, shorter run: tracing every system call
    # slows a proxy in proportion to how many it makes.
    syscalls = None
    if perf and pid:
        perf_proc = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p",
                                      str(pid)], stderr=subprocess.PIPE, text=True)
        time.sleep(0.2)
        short = argparse.Namespace(**vars(args))
        short.seconds = 2
        pn, _, _, pf = run_wrk(short, url, conns, header)
        perf_proc.send_signal(signal.SIGINT)
        err = perf_proc.communicate(timeout=20)[1]
        m = re.search(r"^(\d+),,raw_syscalls:sys_enter", err, re.M)
        syscalls = int(m.group(1)) / pn if m and pn else None
        failures += pf
    hdr = os.path.join(outdir, f"{scen}-{target.name.replace(' ', '_')}-r{round_no}.hdr")
    lat = run_loadgen(args, url, rate, conns, header, hdr)
    return {
        "n": n, "rps": rps, "mbs": mbs, "failures": failures,
        "cpu_us": (cpu1 - cpu0) / 1e3 / n if pid else None,
        "syscalls": syscalls, "engine": eg, "hdr": hdr,
        "lat": lat["latency_us"], "lat_errors": lat["errors"], "lat_requests": lat["requests"],
        "achieved": lat["achieved_rate"],
    }


def plot(scen, results, outdir, rate):
    if not shutil.which("gnuplot"):
        return None
    png = os.path.join(outdir, f"latency-{scen}.png")
    lines = []
    for name, runs in results.items():
        hdr = runs[len(runs) // 2]["hdr"]
        data = hdr + ".dat"
        with open(hdr) as f, open(data, "w") as o:
            for line in f:
                parts = line.split()
                if len(parts) == 4 and not line.startswith("#") and parts[0][0].isdigit():
                    o.write(f"{parts[3]} {parts[0]}\n")
        lines.append(f"'{data}' using 1:2 with lines lw 2 title '{name}'")
    script = f"""
set terminal png size 900,560
set output '{png}'
set title '{scen}: latency by percentile, open loop at {int(rate)} req/s'
set logscale x
set xlabel 'percentile'
set ylabel 'latency (ms)'
set xtics ("50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set grid
set key top left
plot {", ".join(lines)}
"""
    subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, timeout=60)
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=10000,
                    help="open-loop rate for the small scenario (others scale it down)")
    ap.add_argument("--scenarios", default="small,small16,small256,64k,1m,newconn,https,l4")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--baseline", default=None, help="an earlier expressgateway binary")
    ap.add_argument("--only-egw", action="store_true", help="leave HAProxy and nginx out")
    args = ap.parse_args()
    outdir = args.out or os.path.join("bench-out", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)
    wd = tempfile.mkdtemp(prefix="egw-bench-")
    from tls_compare import make_pki
    make_pki(wd)
    args.ca = os.path.join(wd, "ca.pem")
    os.chmod(wd, 0o755)  # nginx workers (another user) read the origin's files
    root = os.path.join(wd, "root")
    os.makedirs(root)
    with open(os.path.join(root, "64k"), "wb") as f:
        f.write(os.urandom(64 * 1024))
    with open(os.path.join(root, "1m"), "wb") as f:
        f.write(os.urandom(1 << 20))
    origin_port, origin_tls = free_port(), free_port()
    procs = []
    try:
        origin = start_nginx(origin_conf(origin_port, root, wd, origin_tls), args.client_cpu, wd)
        procs.append(origin)
        wait_port(origin_port, proc=origin)
        targets = [Target("direct", origin_port, origin_port, origin_tls)]
        hp, lp, tp = free_port(), free_port(), free_port()
        e = start_egw(egw_conf(hp, lp, origin_port, tp, wd), args.proxy_cpu, wd)
        procs.append(e)
        wait_port(hp, proc=e)
        targets.append(Target("ExpressGateway", hp, lp, tp, e, e.pid))
        if args.baseline:
            hp, lp, tp = free_port(), free_port(), free_port()
            b = start_egw(egw_conf(hp, lp, origin_port, tp, wd), args.proxy_cpu, wd,
                          binary=args.baseline, name="egw-baseline.toml")
            procs.append(b)
            wait_port(hp, proc=b)
            targets.append(Target("ExpressGateway (baseline)", hp, lp, tp, b, b.pid))
        if not args.only_egw:
            hp, lp, tp = free_port(), free_port(), free_port()
            h = start_haproxy(haproxy_conf(hp, lp, origin_port, tp, wd), args.proxy_cpu, wd)
            procs.append(h)
            wait_port(hp, proc=h)
            targets.append(Target("HAProxy", hp, lp, tp, h, h.pid))
            hp, lp, tp = free_port(), free_port(), free_port()
            nwd = os.path.join(wd, "nginx-proxy")
            os.makedirs(nwd)
            n = start_nginx(nginx_proxy_conf(hp, lp, origin_port, nwd, tp, wd), args.proxy_cpu,
                            nwd)
            procs.append(n)
            wait_port(hp, proc=n)
            time.sleep(0.5)
            workers = children(n.pid)
            targets.append(Target("nginx", hp, lp, tp, n, workers[0] if workers else n.pid))
        perf = perf_available()
        report = [f"# Side by side ({time.strftime('%Y-%m-%d %H:%M')}): one proxy worker on CPU "
                  f"{args.proxy_cpu}; wrk, expressgateway-load and the nginx origin on CPU "
                  f"{args.client_cpu}; {args.rounds} interleaved rounds of {args.seconds} s, "
                  f"medians.\n",
                  f"Command: `scripts/bench/compare.py --rounds {args.rounds} --seconds "
                  f"{args.seconds} --rate {int(args.rate)} --scenarios {args.scenarios}"
                  f"{' --baseline BINARY' if args.baseline else ''}"
                  f"{' --only-egw' if args.only_egw else ''}`\n"]
        if not perf:
            report.append("(perf cannot count raw_syscalls here: the syscall column is empty.)\n")
        for scen in args.scenarios.split(","):
            path, conns, rate_factor, header, kind = SCENARIOS[scen]
            rate = args.rate * rate_factor
            active = targets
            results = {t.name: [] for t in active}
            for r in range(args.rounds):
                for t in active:
                    results[t.name].append(measure(args, t, scen, rate, outdir, r, perf))
            # Every target must have served the load.
            for name, runs in results.items():
                for run in runs:
                    if run["failures"] or run["lat_errors"]:
                        raise SystemExit(f"{scen}/{name}: {run['failures']} wrk failures, "
                                         f"{run['lat_errors']} load generator errors: not reporting")
            med = lambda name, key: statistics.median(x[key] for x in results[name])
            direct = med("direct", "rps")
            ref = "HAProxy" if "HAProxy" in results else "ExpressGateway (baseline)"
            if ref not in results:
                ref = "direct"
            hap = med(ref, "rps")
            rows = []
            for name in results:
                rps = med(name, "rps")
                runs = results[name]
                lat = lambda k: statistics.median(x["lat"][k] for x in runs) / 1000
                cpu = med(name, "cpu_us") if runs[0]["cpu_us"] is not None else None
                sc = [x["syscalls"] for x in runs if x["syscalls"] is not None]
                eng = [x["engine"] for x in runs if x["engine"]]
                rows.append([
                    name, f"{rps:.0f}", f"{med(name, 'mbs'):.0f}", f"{rps / direct:.2f}",
                    f"{rps / hap:.2f}", f"{lat('p50'):.3f}", f"{lat('p99'):.3f}",
                    f"{lat('p999'):.3f}", f"{cpu:.1f}" if cpu is not None else "-",
                    f"{statistics.median(sc):.2f}" if sc else "-",
                    ("{:.2f} / {:.2f} / {:.2f}".format(
                        statistics.median(e["sqes"] for e in eng),
                        statistics.median(e["cqes"] for e in eng),
                        statistics.median(e["enters"] for e in eng)) if eng else "-"),
                ])
            png = plot(scen, results, outdir, rate)
            title = {"small": "HTTP/1.1 keep-alive, 100-byte responses",
                     "small16": "HTTP/1.1 keep-alive, 100-byte responses, 16 connections",
                     "small256": "HTTP/1.1 keep-alive, 100-byte responses, 256 connections",
                     "https": "HTTPS (TLS 1.3) keep-alive, 100-byte responses",
                     "64k": "HTTP/1.1 keep-alive, 64 KiB responses",
                     "1m": "HTTP/1.1 keep-alive, 1 MiB responses",
                     "newconn": "HTTP/1.1, a new connection per request",
                     "l4": "L4 TCP proxying of HTTP/1.1 keep-alive, 100-byte responses"}[scen]
            report.append(f"## {title} (wrk -c{conns}; latency: open loop at {int(rate)} req/s, "
                          f"c{conns})\n")
            report.append(md_table(["target", "req/s", "MB/s", "x direct", f"x {ref}", "p50 ms",
                                    "p99 ms", "p99.9 ms", "proxy CPU us/req", "syscalls/req",
                                    "engine SQE/CQE/enter per req"], rows))
            if png:
                report.append(f"\n![{scen}]({os.path.basename(png)})\n")
            report.append("")
        # The gateway's own view: latency by phase over the whole run.
        egw = next(t for t in targets if t.name == "ExpressGateway")
        before = egw.proc.output().count("latency by phase")
        os.kill(egw.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and egw.proc.output().count("latency by phase") <= before:
            time.sleep(0.05)
        time.sleep(0.2)
        rows = []
        for m in re.finditer(r"latency (listener|cluster) (\S+) (\S+): n=(\d+) p50=(\d+)us "
                             r"p99=(\d+)us p99\.9=(\d+)us max=(\d+)us",
                             egw.proc.output()[egw.proc.output().rfind("latency by phase"):]):
            rows.append([f"{m.group(1)} {m.group(2)}", m.group(3), m.group(4)] +
                        [f"{int(m.group(i)) / 1000:.3f}" for i in range(5, 9)])
        if rows:
            report.append("## Inside ExpressGateway: latency by phase over the whole run (ms)\n")
            report.append(md_table(["where", "phase", "samples", "p50", "p99", "p99.9", "max"],
                                   rows))
            report.append("")
        text = "\n".join(report)
        with open(os.path.join(outdir, "report.md"), "w") as f:
            f.write(text)
        print(text)
        print(f"\n(written to {outdir}/report.md)")
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
