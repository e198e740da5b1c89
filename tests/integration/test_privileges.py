"""Dropping root ([global] user / group): the listeners are bound as root,
then every thread runs as the user with CAP_NET_BIND_SERVICE alone, and a
reload can still bind a port below 1024. Needs root (skipped otherwise)."""
import grp
import os
import pwd
import re
import socket

import pytest

from egwtest import Gateway, run_check
from httptest import http_exchange

pytestmark = [
    pytest.mark.usefixtures("clean_exit"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root"),
]

CAP_NET_BIND_SERVICE = 1 << 10


def config(user_lines, extra_listener=""):
    return f"""
[global]
workers = 2
{user_lines}

[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"

[[listener.route]]
match = {{}}
respond = {{ status = 200, body = "ok" }}
{extra_listener}
"""


def status_of(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.split()
    return out


def free_privileged_port():
    for port in range(1023, 900, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no free port below 1024")


def test_every_thread_runs_as_the_user_with_only_net_bind_service(gateways):
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    g = Gateway(config('user = "nobody"'))
    gateways.append(g)
    assert (f"running as user nobody (uid {nobody.pw_uid}), group {group} "
            f"(gid {nobody.pw_gid}), with CAP_NET_BIND_SERVICE only") in g.log()
    tids = os.listdir(f"/proc/{g.proc.pid}/task")
    assert len(tids) >= 3  # the control thread and two workers
    for tid in tids:
        st = status_of(g.proc.pid, tid)
        assert st["Uid"] == [str(nobody.pw_uid)] * 4, (tid, st["Uid"])
        assert st["Gid"] == [str(nobody.pw_gid)] * 4, (tid, st["Gid"])
        assert st["Groups"] == [str(nobody.pw_gid)], (tid, st["Groups"])
        assert int(st["CapEff"][0], 16) == CAP_NET_BIND_SERVICE, (tid, st["CapEff"])
        assert int(st["CapPrm"][0], 16) == CAP_NET_BIND_SERVICE, (tid, st["CapPrm"])
        # Ambient as well: what a binary upgrade starts keeps it.
        assert int(st["CapAmb"][0], 16) == CAP_NET_BIND_SERVICE, (tid, st["CapAmb"])
        assert st["NoNewPrivs"] == ["1"], (tid, st["NoNewPrivs"])
    assert b"200 OK" in http_exchange(g.address("web"), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                                      read_until_close=False)

    # A reload binds a port below 1024 as the user (who must be able to read
    # the file: the test's directory is root's, 0700).
    os.chmod(g.dir, 0o755)
    port = free_privileged_port()
    g.reload(config('user = "nobody"', f"""
[[listener]]
name = "low"
bind = "127.0.0.1:{port}"
protocol = "http"

[[listener.route]]
match = {{}}
respond = {{ status = 200, body = "low" }}
"""))
    out = http_exchange(("127.0.0.1", port), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                        read_until_close=False)
    assert b"200 OK" in out and out.endswith(b"low"), out

    # A different user in the file waits for a restart.
    g.reload(config('user = "daemon"'))
    assert "user, group and [admin] take effect at restart" in g.log()
    assert status_of(g.proc.pid)["Uid"] == [str(nobody.pw_uid)] * 4


def test_an_explicit_group_and_a_root_warning(gateways):
    g = Gateway(config('user = "nobody"\ngroup = "daemon"'))
    gateways.append(g)
    daemon_gid = grp.getgrnam("daemon").gr_gid
    st = status_of(g.proc.pid)
    assert st["Gid"] == [str(daemon_gid)] * 4
    assert st["Groups"] == [str(daemon_gid)]
    g2 = Gateway(config(""))
    gateways.append(g2)
    assert "running as root: set [global] user" in g2.log()


def test_unknown_user_or_group_is_a_located_config_error():
    for lines, want in (('user = "no-such-user-egw"', "user 'no-such-user-egw' in [global] does not exist"),
                        ('user = "nobody"\ngroup = "no-such-group-egw"',
                         "group 'no-such-group-egw' in [global] does not exist"),
                        ('group = "daemon"', "group in [global] needs user")):
        rc, out = run_check(config(lines))
        assert rc != 0, out
        assert want in out, out
        assert re.search(r":\d+:\d+: ", out), out
