#!/usr/bin/env python3
"""Memory per idle HTTP/1.1 client connection, ExpressGateway beside HAProxy
and nginx: the proxy's RSS growth per connection with --count connections
that sent nothing, then with as many that sent half a request head (the
start of a slowloris). One worker (or process) each, on CPU 1; the clients
on CPU 0. Nothing upstream is ever reached.

  scripts/bench/idle_http.py [--count 9000] [--targets egw,haproxy,nginx]

Prints a Markdown table: bytes per connection, and how many were held.
"""
import argparse
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, have, md_table, rss_kb, start_egw, start_haproxy, start_nginx, wait_port  # noqa: E402

HALF_HEAD = (b"GET /some/path?with=query HTTP/1.1\r\nHost: bench.test\r\n"
             b"User-Agent: idle-http/1.0\r\nAccept: */*\r\nX-Padding: " + b"p" * 40)


def egw_conf(port, origin):
    return f"""
[global]
workers = 1
max_sessions = 100000
[[listener]]
name = "web"
bind = "127.0.0.1:{port}"
protocol = "http"
cluster = "origin"
http_request_timeout_ms = 600000
keep_alive_timeout_ms = 600000
[[cluster]]
name = "origin"
endpoints = [ {{ address = "127.0.0.1:{origin}" }} ]
"""


def haproxy_conf(port, origin):
    return f"""
global
  nbthread 1
  maxconn 9900
defaults
  mode http
  timeout connect 2s
  timeout client 600s
  timeout server 600s
  timeout http-request 600s
  timeout http-keep-alive 600s
frontend web
  bind 127.0.0.1:{port}
  default_backend origin
backend origin
  server s1 127.0.0.1:{origin}
"""


def nginx_conf(port, origin, wd):
    return f"""
worker_processes 1;
worker_rlimit_nofile 30000;
error_log {wd}/nginx-error.log error;
pid {wd}/nginx.pid;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  client_header_timeout 600s;
  keepalive_timeout 600s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://127.0.0.1:{origin}; }}
  }}
}}
"""


def hold(pid, port, count, payload):
    """RSS growth per connection with `count` connections that sent `payload`."""
    time.sleep(0.5)
    before = rss_kb(pid)
    conns = []
    try:
        for i in range(count):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                if payload:
                    s.sendall(payload)
            except OSError as e:
                print(f"connection {i + 1} failed ({e}); measuring {i}", file=sys.stderr)
                break
            conns.append(s)
        time.sleep(2.0)  # let the proxy accept and read them all
        alive = 0
        for s in conns:  # still open (a proxy may have refused some)
            s.setblocking(False)
            try:
                alive += 0 if s.recv(1) == b"" else 1
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        after = rss_kb(pid)
        return (after - before) * 1024 / max(alive, 1), alive
    finally:
        for s in conns:
            s.close()
        time.sleep(1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=9000)
    ap.add_argument("--targets", default="egw,haproxy,nginx")
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    rows = []
    for name in args.targets.split(","):
        if name != "egw" and not have(name):
            print(f"{name}: not installed, skipped", file=sys.stderr)
            continue
        wd = tempfile.mkdtemp(prefix=f"idle-{name}-")
        port, origin = free_port(), free_port()
        if name == "egw":
            proc = start_egw(egw_conf(port, origin), 1, wd)
        elif name == "haproxy":
            proc = start_haproxy(haproxy_conf(port, origin), 1, wd)
        else:
            proc = start_nginx(nginx_conf(port, origin, wd), 1, wd)
        try:
            wait_port(port, proc=proc)
            nothing, held = hold(proc.pid, port, args.count, b"")
            half, held_half = hold(proc.pid, port, args.count, HALF_HEAD)
            rows.append([name, f"{nothing:,.0f}", f"{held:,}", f"{half:,.0f}", f"{held_half:,}"])
        finally:
            proc.stop()
    print(md_table(["proxy", "bytes / idle connection (sent nothing)", "held",
                    "bytes / connection with half a head", "held"], rows))


if __name__ == "__main__":
    main()
