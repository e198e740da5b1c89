"""Hot binary upgrade (`expressgateway ctl upgrade`): the running process
starts its binary again, hands it every listening socket (and the admin and
metrics sockets), and drains. Driven with real clients: expressgateway-load
at a fixed rate through an upgrade and ten reloads with no failed request,
a keep-alive client told Connection: close, TLS sessions that resume in the
new process, a second upgrade refused while the old process drains, the old
process gone by its grace deadline, a new binary that fails or a file that
does not load leaving the old process serving, and the service manager told
the new main PID."""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from egwtest import BINARY, Gateway, sanitized_build, wait_until
from httptest import Responses
from loadtest import LOAD, free_port, pinned, CLIENT_CPU
from test_systemd import NotifySocket
from tlstest import Pki, cert_table, s_client

pytestmark = pytest.mark.usefixtures("clean_exit")

# The new process is the old one's child. Once the old one exits it is
# re-parented to the nearest subreaper: this test process, which can then
# wait for it and see its exit status.
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

GRACE_MS = 3000


class PidProc:
    """Stands in for Popen for a process this test did not start (the new
    one of an upgrade): it can be waited for once it is our child."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is not None:
            return self.returncode
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            # Not ours yet (its parent still runs), or already reaped.
            return None if os.path.exists(f"/proc/{self.pid}") else -1
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait(10)


def config(sock, backend, port, extra_global="", listener_extra="", admin_extra=""):
    return f"""
[global]
workers = 2
grace_period_ms = {GRACE_MS}
{extra_global}

[admin]
socket = "{sock}"
{admin_extra}

[[listener]]
name = "web"
bind = "127.0.0.1:{port}"
protocol = "http"
cluster = "app"
{listener_extra}

[[cluster]]
name = "app"
endpoints = [ {{ address = "{backend.address}" }} ]
"""


def ctl(binary, sock, *words, timeout=90):
    p = subprocess.run([binary, "ctl", "--socket", sock, "--json", *words], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr


class Setup:
    """A copy of the binary in a directory of its own (an upgrade runs the
    file at that path, which a test replaces as a package upgrade would),
    and the gateway started from it."""

    def __init__(self, gateways, backend, port=None, env=None, **kw):
        self.dir = tempfile.mkdtemp(prefix="egw-upgrade-")
        self.binary = os.path.join(self.dir, "expressgateway")
        shutil.copy2(BINARY, self.binary)
        self.sock = os.path.join(self.dir, "admin.sock")
        self.port = port or free_port()
        self.g = Gateway(config(self.sock, backend, self.port, **kw), binary=self.binary, env=env)
        gateways.append(self.g)
        wait_until(lambda: os.path.exists(self.sock), what="admin socket")

    def replace_binary(self, content=None, mode=0o755):
        """Puts a new file at the binary's path (by rename, as dpkg does):
        `content` (a script), or the real binary again."""
        tmp = self.binary + ".new"
        if content is None:
            shutil.copy2(BINARY, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, self.binary)

    def upgrade(self, expect_ok=True):
        old = self.g.proc
        rc, r, err = ctl(self.binary, self.sock, "upgrade")
        if not expect_ok:
            return rc, r, err
        assert rc == 0 and r["ok"], (rc, r, err, self.g.log()[-3000:])
        assert r["previous_pid"] == old.pid and r["pid"] != old.pid, r
        self.g.generation += 1
        self.g._wait_ready(self.g.generation)
        return r

    def finish(self, old, r, timeout=GRACE_MS / 1000 + 10):
        """Waits for the old process to exit (cleanly) and makes the new one
        the gateway's process."""
        assert old.wait(timeout) == 0, self.g.log()[-3000:]
        self.g.proc = PidProc(r["pid"])
        # Re-parented to this process once the old one is gone.
        wait_until(lambda: os.path.exists(f"/proc/{r['pid']}"), what="new process")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def setups():
    made = []
    yield made
    for s in made:
        s.cleanup()


def get(port, path="/", conn=None, headers=""):
    s = conn or socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
        return Responses(s).next()
    finally:
        if conn is None:
            s.close()


@pytest.mark.parametrize("proto", ["http1", "h2"])
def test_upgrade_and_ten_reloads_under_load_lose_no_request(gateways, setups, backend, proto):
    st = Setup(gateways, backend)
    setups.append(st)
    old = st.g.proc
    rate = 150 if sanitized_build() else 400
    seconds = 12
    out = os.path.join(st.dir, "load.json")
    load = subprocess.Popen(
        pinned([LOAD, "--url", f"http://127.0.0.1:{st.port}/", "--rate", str(rate), "-c", "16",
                "--duration", f"{seconds}s", "--timeout", "5s", "--json", out, "-q"]
               + (["--h2", "--streams", "4"] if proto == "h2" else []), CLIENT_CPU),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        r = st.upgrade()
        st.finish(old, r)
        # Ten reloads in a row through the new process, still under load.
        for i in range(10):
            st.g.write_config(config(st.sock, backend, st.port) + f"\n# reload {i}\n")
            rc, rr, err = ctl(st.binary, st.sock, "reload")
            assert rc == 0 and rr["ok"], (rc, rr, err)
            time.sleep(0.2)
        stdout, stderr = load.communicate(timeout=seconds + 30)
    finally:
        if load.poll() is None:
            load.kill()
    assert load.returncode == 0, (stdout, stderr)
    with open(out) as f:
        res = json.load(f)
    assert res["errors"] == 0, (res["error_kinds"], st.g.log()[-3000:])
    assert all(v == 0 for v in res["error_kinds"].values()), res["error_kinds"]
    assert res["status"]["2xx"] == res["requests"], res["status"]
    assert res["requests"] >= rate * seconds * 0.9, res
    # Both processes answered: the old one until it handed over, the new one after.
    log = st.g.log()
    assert f"upgrade: process {r['pid']} serves" in log
    assert "upgrade: the previous process" in log and "has exited" in log
    rc, info, _ = ctl(st.binary, st.sock, "show info")
    assert info["pid"] == r["pid"] and "previous_pid" not in info, info
    assert info["generation"] == 12, info  # 1, the upgrade's 2, then ten reloads


def test_keep_alive_clients_get_connection_close_and_a_second_upgrade_waits(
        gateways, setups, backend):
    st = Setup(gateways, backend)
    setups.append(st)
    old = st.g.proc
    conn = socket.create_connection(("127.0.0.1", st.port), timeout=30)
    status, headers, _ = get(st.port, conn=conn)
    assert status == 200 and headers.get("connection") != "close", headers
    # A slow request in flight on another connection holds the old process
    # until its grace deadline.
    slow = socket.create_connection(("127.0.0.1", st.port), timeout=30)
    slow.sendall(b"GET /sleep/60000 HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: any(q.target == "/sleep/60000" for q in backend.requests),
               what="slow request at the backend")
    t0 = time.monotonic()
    r = st.upgrade()
    # The idle keep-alive connection to the old process: its next request is
    # answered, and says it is the last.
    status, headers, body = get(st.port, conn=conn)
    assert status == 200 and headers.get("connection") == "close", headers
    assert conn.recv(100) == b""
    conn.close()
    # New connections reach the new process; a second upgrade is refused
    # while the old one drains.
    assert get(st.port)[0] == 200
    rc, refused, _ = ctl(st.binary, st.sock, "upgrade")
    assert rc == 1 and not refused["ok"] and "still draining" in refused["error"], refused
    rc, info, _ = ctl(st.binary, st.sock, "show info")
    assert info["pid"] == r["pid"] and info["previous_pid"] == old.pid, info
    # The old process leaves at the grace deadline (the slow request is cut then).
    assert old.wait(GRACE_MS / 1000 + 8) == 0
    took = time.monotonic() - t0
    assert GRACE_MS / 1000 - 0.5 <= took <= GRACE_MS / 1000 + 4, took
    assert slow.recv(100) == b""  # closed at the deadline, with no answer
    slow.close()
    st.finish(old, r)
    wait_until(lambda: "previous_pid" not in ctl(st.binary, st.sock, "show info")[1],
               what="the new process to see the old one gone")
    # Now it upgrades again.
    old2 = st.g.proc
    r2 = st.upgrade()
    st.finish(old2, r2)
    assert get(st.port)[0] == 200


def test_a_new_binary_that_fails_leaves_the_old_one_serving(gateways, setups, backend):
    mport = free_port()
    st = Setup(gateways, backend, admin_extra=f'metrics = "127.0.0.1:{mport}"')
    setups.append(st)
    pid = st.g.proc.pid
    good = os.path.join(st.dir, "good")
    shutil.copy2(BINARY, good)

    # A binary that exits at once.
    st.replace_binary("#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
    rc, r, _ = ctl(good, st.sock, "upgrade")
    assert rc == 1 and not r["ok"], r
    assert "exit status 3" in r["error"] and "serves on" in r["error"], r
    assert get(st.port)[0] == 200

    # A binary that is not executable.
    st.replace_binary("not a program", mode=0o644)
    rc, r, _ = ctl(good, st.sock, "upgrade")
    assert rc == 1 and "cannot run" in r["error"], r

    # The real binary, but the file no longer loads: the errors come back.
    st.replace_binary()
    with open(st.g.config_path) as f:
        text = f.read()
    st.g.write_config(text + "\n[[cluster]]\nname = 5\n")
    rc, r, _ = ctl(st.binary, st.sock, "upgrade")
    assert rc == 1 and "gateway.toml:" in r["error"] and "exit status 2" in r["error"], r

    # The running process noticed nothing: same pid, serving, its admin and
    # metrics sockets answer, and an upgrade with a good file goes through.
    st.g.write_config(text)
    assert get(st.port)[0] == 200
    rc, info, _ = ctl(st.binary, st.sock, "show info")
    assert info["pid"] == pid and info["generation"] == 1, info
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as m:
        assert m.status == 200
    old = st.g.proc
    r = st.upgrade()
    st.finish(old, r)
    # The metrics socket was handed over too: same port, the new process.
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as m:
        body = m.read().decode()
    assert "egw_build_info" in body
    rc, info, _ = ctl(st.binary, st.sock, "show info")
    assert info["pid"] == r["pid"], info
    assert "upgrade failed" in st.g.log()


def test_tls_sessions_resume_in_the_new_process_and_systemd_learns_its_pid(
        gateways, setups, backend, tmp_path):
    pki = Pki()
    try:
        leaf = pki.make_leaf("a", "a.test", ["a.test"])
        notify = NotifySocket()
        try:
            tls = f"[listener.tls]\ncertificates = {cert_table([leaf])}\n"
            st = Setup(gateways, backend, listener_extra=tls,
                       env={"NOTIFY_SOCKET": notify.path})
            setups.append(st)
            assert notify.until("READY")[-1]["READY"] == "1"
            sess = str(tmp_path / "s.pem")
            req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
            _, out = s_client(("127.0.0.1", st.port), "-servername", "a.test", "-CAfile",
                              pki.ca["cert"], "-sess_out", sess, "-ign_eof", data=req)
            assert "New, TLSv1.3" in out and "HTTP/1.1 200" in out, out
            old = st.g.proc
            r = st.upgrade()
            seen = notify.until("MAINPID")
            assert seen[-1]["MAINPID"] == str(r["pid"]) and seen[-1]["READY"] == "1", seen
            st.finish(old, r)
            _, out = s_client(("127.0.0.1", st.port), "-servername", "a.test", "-CAfile",
                              pki.ca["cert"], "-sess_in", sess, "-ign_eof", data=req)
            assert "Reused, TLSv1.3" in out and "HTTP/1.1 200" in out, out
            # The new process is the main one now: its reloads are told.
            with open(st.g.config_path) as f:
                st.g.reload(f.read() + "\n# again\n")
            seen = notify.until("READY")
            assert seen[-1]["STATUS"].startswith("generation 3"), seen
        finally:
            notify.close()
    finally:
        pki.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_an_unprivileged_gateway_upgrades_and_still_binds_low_ports(gateways, setups, backend):
    from test_privileges import CAP_NET_BIND_SERVICE, free_privileged_port, status_of
    import pwd
    nobody = pwd.getpwnam("nobody")
    st = Setup(gateways, backend, extra_global='user = "nobody"')
    setups.append(st)
    # The user reads the file and runs the binary in the test's directories.
    os.chmod(st.g.dir, 0o755)
    os.chmod(st.dir, 0o755)
    old = st.g.proc
    r = st.upgrade()
    st.finish(old, r)
    for tid in os.listdir(f"/proc/{r['pid']}/task"):
        s = status_of(r["pid"], tid)
        assert s["Uid"] == [str(nobody.pw_uid)] * 4, s["Uid"]
        assert int(s["CapEff"][0], 16) == CAP_NET_BIND_SERVICE, s["CapEff"]
        assert s["NoNewPrivs"] == ["1"]
    port = free_privileged_port()
    low = f"""
[[listener]]
name = "low"
bind = "127.0.0.1:{port}"
protocol = "http"
cluster = "app"
"""
    st.g.reload(config(st.sock, backend, st.port, extra_global='user = "nobody"') + low)
    assert get(port)[0] == 200
    assert get(st.port)[0] == 200
