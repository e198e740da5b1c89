"""Shared pieces of the side-by-side benchmark scripts: starting the proxies
(ExpressGateway, HAProxy 2.6, nginx 1.22) and backends pinned to CPUs,
measuring their CPU time and memory, and writing Markdown tables."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("EGW_BUILD_DIR", os.path.join(ROOT, "build"))
EGW = os.path.join(BUILD, "expressgateway")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.p.poll() is not None:
            raise RuntimeError(f"{proc.p.args} exited: {proc.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_ns(pid):
    """CPU time of every thread of `pid`, from the scheduler (ns)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def tree_cpu_ns(pid):
    """CPU of `pid` and its children (nginx and HAProxy fork workers)."""
    total = cpu_ns(pid)
    for child in children(pid):
        total += tree_cpu_ns(child)
    return total


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def rss_kb(pid):
    total = 0
    for p in [pid] + children(pid):
        with open(f"/proc/{p}/status") as f:
            m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            total += int(m.group(1)) if m else 0
    return total


class Proc:
    def __init__(self, args, cpu=None, cwd=None, env=None):
        if cpu is not None:
            args = ["taskset", "-c", str(cpu)] + list(args)
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd,
                                  env=env)

    @property
    def pid(self):
        return self.p.pid

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_egw(config_text, cpu, workdir, binary=EGW, name="egw.toml"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(config_text)
    proc = Proc([binary, "-c", path, "--workers", "1", "--log-level", "info"], cpu=cpu)
    return proc


def start_haproxy(config_text, cpu, workdir):
    path = os.path.join(workdir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(config_text)
    return Proc(["haproxy", "-db", "-f", path], cpu=cpu)


def start_nginx(config_text, cpu, workdir):
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(config_text)
    return Proc(["nginx", "-p", workdir, "-c", path, "-g", "daemon off;"], cpu=cpu)


class WrkResult:
    def __init__(self, out):
        self.out = out
        self.requests = int(re.search(r"(\d+) requests in", out).group(1))
        self.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
        self.mbs = float(tr.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}[tr.group(2)]
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                         out)
        self.failures = ((int(bad.group(1)) if bad else 0)
                         + (sum(int(x) for x in errs.groups()) if errs else 0))
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
        self.p99_ms = (float(p99.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[p99.group(2)]
                       if p99 else None)


def run_wrk(cpu, seconds, url, conns, header=None):
    """wrk -t1 pinned to `cpu` (with --latency); its requests, requests/s,
    MB/s, failures (non-2xx/3xx plus socket errors) and p99."""
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if header:
        cmd += ["-H", header]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    return WrkResult(out)


def have(tool):
    return shutil.which(tool) is not None


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)
