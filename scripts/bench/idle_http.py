#!/usr/bin/env python3
"""Memory per idle HTTP client connection, ExpressGateway beside HAProxy
and nginx: the proxy's RSS growth per connection with --count connections
that sent nothing, then with as many that sent half an HTTP/1.1 request head
(the start of a slowloris), then with as many idle HTTP/2 connections (prior
knowledge: the preface, an empty SETTINGS and the ACK of the proxy's). One
worker (or process) each, on CPU 1; the clients on CPU 0. Nothing upstream
is ever reached.

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

# An HTTP/2 client's preface, empty SETTINGS and SETTINGS ACK.
H2_IDLE = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
           + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
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


def nginx_conf(port, origin, wd, h2_port):
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
    listen 127.0.0.1:{h2_port} http2 backlog=4096;
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
        cells = [name]
        # A fresh process per measurement: memory freed by one would be
        # reused by the next and hide what it costs.
        for payload in (b"", HALF_HEAD, H2_IDLE):
            wd = tempfile.mkdtemp(prefix=f"idle-{name}-")
            port, origin = free_port(), free_port()
            h2_port = port  # one port for both (nginx: an http2 listen of its own)
            if name == "egw":
                proc = start_egw(egw_conf(port, origin), 1, wd)
            elif name == "haproxy":
                proc = start_haproxy(haproxy_conf(port, origin), 1, wd)
            else:
                h2_port = free_port()
                proc = start_nginx(nginx_conf(port, origin, wd, h2_port), 1, wd)
            try:
                wait_port(port, proc=proc)
                per, held = hold(proc.pid, h2_port if payload == H2_IDLE else port, args.count,
                                 payload)
                cells += [f"{per:,.0f}", f"{held:,}"]
            finally:
                proc.stop()
        rows.append(cells)
    print(md_table(["proxy", "bytes / idle connection (sent nothing)", "held",
                    "bytes / connection with half a head", "held",
                    "bytes / idle HTTP/2 connection (after SETTINGS)", "held"], rows))


if __name__ == "__main__":
    main()
