"""The command line and configuration errors: every invalid case exits 2
and names file, line, column and what was expected; nothing starts."""
import os
import socket
import subprocess

import pytest

from egwtest import BINARY, ROOT, Gateway, TcpBackend, echo_handler, run_check

VALID = """
[global]
workers = 1

[[listener]]
name = "tcp_in"
bind = "127.0.0.1:0"
cluster = "app"

[[cluster]]
name = "app"
endpoints = [ { address = "127.0.0.1:9" } ]
"""


def test_version_and_check_of_the_shipped_configs():
    p = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("expressgateway ")
    for name in ("expressgateway.toml", "example.toml"):
        p = subprocess.run([BINARY, "--check", "-c", os.path.join(ROOT, "config", name)],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "configuration ok" in p.stdout


def test_example_config_is_generated_from_the_defaults_table():
    p = subprocess.run([BINARY, "--print-example"], capture_output=True, text=True, timeout=10)
    with open(os.path.join(ROOT, "config", "example.toml")) as f:
        assert p.stdout == f.read(), "config/example.toml is stale: regenerate with --print-example"


def test_valid_minimal_config():
    code, out = run_check(VALID)
    assert code == 0, out


@pytest.mark.parametrize(
    "config, expected",
    [
        # unknown key, with a suggestion
        (VALID.replace('name = "app"', 'name = "app"\nbalancr = "random"'),
         "FILE:12:1: unknown key 'balancr' in [[cluster]] 'app'; did you mean 'balancer'?"),
        (VALID.replace("workers = 1", "workers = 1\nfrobnicate = true"),
         "FILE:4:1: unknown key 'frobnicate' in [global] (expected one of: workers,"),
        # wrong type
        (VALID.replace("workers = 1", 'workers = "two"'),
         "FILE:3:11: 'workers' in [global] must be an integer, found a string"),
        (VALID.replace('endpoints = [ { address = "127.0.0.1:9" } ]',
                       'endpoints = [ { address = "127.0.0.1:9" } ]\nretries = -1'),
         "FILE:13:11: 'retries' in [[cluster]] 'app' must be between 0 and 100, found -1"),
        (VALID.replace('cluster = "app"\n', 'cluster = "app"\nbind = 9000\n', 1),
         "FILE:9:8: TOML syntax: Error while parsing key-value pair: cannot redefine existing "
         "string 'bind'"),
        # duplicate names
        (VALID + '\n[[cluster]]\nname = "app"\nendpoints = [ { address = "127.0.0.1:10" } ]\n',
         "duplicate cluster name 'app' (first defined at line 10)"),
        (VALID + '\n[[listener]]\nname = "tcp_in"\nbind = "127.0.0.1:0"\ncluster = "app"\n',
         "duplicate listener name 'tcp_in' (first defined at line 5)"),
        # a listener naming a missing cluster
        (VALID.replace('cluster = "app"', 'cluster = "nope"'),
         "FILE:5:1: listener 'tcp_in' names cluster 'nope', which is not defined (clusters: app)"),
        # bad addresses
        (VALID.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:99999"'),
         "FILE:7:8: bad bind address '127.0.0.1:99999': expected IPv4:port or [IPv6]:port"),
        (VALID.replace('"127.0.0.1:9"', '"localhost:80"'),
         "bad endpoint address 'localhost:80': expected IPv4:port or [IPv6]:port"),
        (VALID.replace('"127.0.0.1:9"', '"::1:80"'), "bad endpoint address '::1:80'"),
        # bad enumerations
        (VALID.replace('name = "app"', 'name = "app"\nbalancer = "fastest"'),
         "balancer 'fastest' in [[cluster]] 'app' is not one of round_robin, weighted_round_robin"),
        (VALID.replace('cluster = "app"', 'cluster = "app"\nprotocol = "udp"'),
         "protocol 'udp' in [[listener]] 'tcp_in' is not one of tcp, http"),
        # missing required keys
        (VALID.replace('bind = "127.0.0.1:0"\n', ""), "missing required key 'bind' in [[listener]] 'tcp_in'"),
        (VALID.replace('endpoints = [ { address = "127.0.0.1:9" } ]', ""),
         "missing required key 'endpoints' in [[cluster]] 'app'"),
        (VALID.replace('endpoints = [ { address = "127.0.0.1:9" } ]', "endpoints = []"),
         "[[cluster]] 'app' has no endpoints"),
        # TOML syntax
        (VALID + "\n[[listener]\n", "TOML syntax"),
    ],
)
def test_invalid_config_exits_2_with_a_located_message(config, expected):
    code, out = run_check(config)
    assert code == 2, out
    assert expected in out, out


def test_every_error_is_reported_not_just_the_first():
    bad = VALID.replace("workers = 1", 'workers = "x"\nbogus = 1').replace(
        'cluster = "app"', 'cluster = "missing"')
    code, out = run_check(bad)
    assert code == 2
    lines = [l for l in out.splitlines() if l.startswith("FILE:")]
    assert len(lines) >= 3, out


def test_port_in_use_at_start_exits_2_and_nothing_starts(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    cfg = tmp_path / "g.toml"
    cfg.write_text(VALID.replace('bind = "127.0.0.1:0"', f'bind = "127.0.0.1:{port}"'))
    p = subprocess.run([BINARY, "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, p.stderr
    assert f":7:8: listener 'tcp_in': cannot listen on 127.0.0.1:{port}: bind: Address already in use" in p.stderr
    assert "ready:" not in p.stderr
    blocker.close()


def test_missing_file_and_bad_command_line():
    p = subprocess.run([BINARY, "--check", "-c", "/nonexistent.toml"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "cannot open" in p.stderr
    p = subprocess.run([BINARY, "--workers", "0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2
    p = subprocess.run([BINARY, "--log-level", "loud"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "--log-level" in p.stderr


def test_default_config_starts_with_no_other_server_present(gateways):
    with open(os.path.join(ROOT, "config", "expressgateway.toml")) as f:
        text = f.read()
    # The shipped file binds fixed ports; move them to 0 to stay hermetic.
    text = text.replace('"127.0.0.1:9000", "[::1]:9000"', '"127.0.0.1:0"').replace(
        '"127.0.0.1:8080"', '"127.0.0.1:0"')
    g = Gateway(text)
    gateways.append(g)
    s = socket.create_connection(g.address("tcp_in"), timeout=5)
    s.settimeout(10)
    assert s.recv(1) == b""  # no endpoint is up: closed, not hung
    s.close()
    host, port = g.address("web")
    p = subprocess.run(["curl", "-sS", "-i", f"http://{host}:{port}/"], capture_output=True,
                       timeout=10)
    assert p.stdout.startswith(b"HTTP/1.1 200 OK") and b"ExpressGateway is running" in p.stdout
    p = subprocess.run(["curl", "-sS", f"http://{host}:{port}/healthz"], capture_output=True,
                       timeout=10)
    assert p.stdout == b"ok\n"
    assert g.stop() == 0


CLUSTER_ALPN = """
[[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
{listener_cluster}
{route}

[[listener]]
name = "l4"
bind = "127.0.0.1:0"
cluster = "raw"

[[cluster]]
name = "app"
endpoints = [ {{ address = "127.0.0.1:9" }} ]
[cluster.tls]
verify = false
alpn = {alpn}

[[cluster]]
name = "raw"
endpoints = [ {{ address = "127.0.0.1:10" }} ]
[cluster.tls]
verify = false
alpn = ["h2", "http/1.1"]
"""


@pytest.mark.parametrize("uses", ["listener", "route"])
def test_cluster_alpn_of_an_http_listener_is_http11_only(uses):
    def config(alpn):
        return CLUSTER_ALPN.format(
            alpn=alpn,
            listener_cluster='cluster = "app"' if uses == "listener" else "",
            route=('\n[[listener.route]]\nmatch = { path_prefix = "/" }\ncluster = "app"\n'
                   if uses == "route" else ""))

    # A cluster with protocol = "http1" (the default) is spoken to in
    # HTTP/1.1: an endpoint that picked h2 would be spoken to in the wrong
    # protocol. (The tcp listener's cluster "raw" may offer anything: it
    # relays bytes.)
    line = CLUSTER_ALPN.splitlines().index("alpn = {alpn}") + 1
    if uses == "route":
        line += 4
    code, out = run_check(config('["h2", "http/1.1"]'))
    assert code == 2, out
    assert (f"FILE:{line}:8: cluster 'app' tls: alpn 'h2' cannot be used: http listener 'web' "
            "speaks HTTP/1.1 to this cluster (protocol = \"http1\"), so alpn may list only "
            "\"http/1.1\"") in out, out
    assert out.count("tls: alpn") == 1, out  # one error per name, not per listener
    code, out = run_check(config('"h3"'))
    assert code == 2 and "alpn 'h3' cannot be used" in out, out
    for ok in ('"http/1.1"', '["http/1.1"]', "[]"):
        code, out = run_check(config(ok))
        assert code == 0, (ok, out)
