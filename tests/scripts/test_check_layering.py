"""Unit tests for scripts/check_layering.py: each rule fails on a small fake
tree with one offending include, naming file:line; a clean tree and the real
tree pass."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_layering.py"

_spec = importlib.util.spec_from_file_location("check_layering", SCRIPT)
check_layering = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layering)

# A tree that uses every allowed edge once.
CLEAN = {
    "include/egw/log.h": '#pragma once\n#include <fmt/format.h>\n#include <unistd.h>\n',
    "include/egw/address.h": ('#pragma once\n#include <sys/socket.h>\n#include <netinet/in.h>\n'
                              '#include <arpa/inet.h>\n#include "egw/log.h"\n#include "./log.h"\n'),
    "uring/ring.h": ('#pragma once\n#include <liburing.h>\n#include <linux/io_uring.h>\n'
                     '#include <sys/uio.h>\n#include <fcntl.h>\n#include <poll.h>\n'
                     '#include "egw/log.h"\n#include <egw/address.h>\n'),
    "uring/event_loop.h": '#pragma once\n#include "uring/ring.h"\n#include "ring.h"\n',
    "proto/h1/parser.h": ('#pragma once\n#include <string_view>\n#include <cstdint>\n'
                          '#include "egw/log.h"\n#include <nghttp2/nghttp2.h>\n'),
    "proto/h1/body.h": '#pragma once\n#include "proto/h1/parser.h"\n#include "./parser.h"\n',
    "proto/quic/crypto.cc": '#include <gnutls/gnutls.h>\n#include <ngtcp2/ngtcp2.h>\n',
    "src/balancer/balancer.h": '#pragma once\n#include "egw/log.h"\n#include "proto/h1/parser.h"\n',
    "src/balancer/maglev.cc": '#include "src/balancer/balancer.h"\n#include <xxhash.h>\n',
    "src/stats/latency.h": '#pragma once\n#include "egw/log.h"\n',
    "src/config/config.h": '#pragma once\n#include "src/balancer/balancer.h"\n',
    "src/config/loader.cc": ('#include "src/config/config.h"\n#include <toml++/toml.h>\n'
                             '#include "src/route/router.h"\n#include "../route/cidr.h"\n'),
    "src/route/router.h": ('#pragma once\n#include "src/config/config.h"\n'
                           '#include "proto/h1/parser.h"\n#include <re2/re2.h>\n'),
    "src/route/cidr.h": '#pragma once\n#include <arpa/inet.h>\n',
    "src/tls/session.h": '#pragma once\n#include <wolfssl/ssl.h>\n#include <linux/tls.h>\n',
    "src/net/byte_stream.h": ('#pragma once\n#include "src/tls/session.h"\n#include <uring/ring.h>\n'
                              '#include "src/config/config.h"\n#include "src/stats/latency.h"\n'),
    "src/http/forwarding.h": ('#pragma once\n#include "src/config/config.h"\n'
                              '#include "uring/event_loop.h"\n#include "proto/h1/parser.h"\n'),
    "src/upstream/http_connection.h": ('#pragma once\n#include "src/net/byte_stream.h"\n'
                                       '#include "src/balancer/balancer.h"\n'
                                       '#include "uring/event_loop.h"\n'
                                       '#include "src/http/forwarding.h"\n'),
    "src/proxy/exchange.h": ('#pragma once\n#include "src/upstream/http_connection.h"\n'
                            '#include "src/route/router.h"\n#include "src/net/byte_stream.h"\n'),
    "src/downstream/http_session.h": ('#pragma once\n#include "src/proxy/exchange.h"\n'
                                      '#include <sys/socket.h>\n'),
    "src/server/worker.h": '#pragma once\n#include "src/downstream/http_session.h"\n',
    "src/load/main.cc": ('#include <CLI/CLI.hpp>\n#include "src/http/forwarding.h"\n'
                         '#include "src/tls/session.h"\n'),
    "src/main.cc": '#include "src/server/worker.h"\n#include "src/load/runner.h"\n',
    "tests/unit/x_test.cc": '#include <gtest/gtest.h>\n#include "src/server/worker.h"\n',
    "benchmarks/b.cc": '#include <benchmark/benchmark.h>\n#include "tests/support/s.h"\n',
}


def make_tree(root, extra=None):
    for rel, text in {**CLEAN, **(extra or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(root, capsys):
    rc = check_layering.main(["--root", str(root)])
    return rc, capsys.readouterr().out


def assert_fails(tmp_path, capsys, rel, include, *words):
    """rel gets `include` on line 2; the check must fail naming rel:2."""
    make_tree(tmp_path, {rel: f"#pragma once\n#include {include}\n"})
    rc, out = run(tmp_path, capsys)
    assert rc == 1, out
    lines = [l for l in out.splitlines() if f"{rel}:2:" in l]
    assert lines, out
    for w in words:
        assert w in lines[0], out


def test_clean_tree_passes(tmp_path, capsys):
    rc, out = run(make_tree(tmp_path), capsys)
    assert rc == 0, out
    assert "layering:" in out and "files follow" in out


def test_real_tree_passes():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Holes that used to pass.

@pytest.mark.parametrize("rel, include, words", [
    ("uring/ring.h", '"../src/http/message.h"', ["src/http/message.h", "src/http"]),
    ("include/egw/log.h", '"./../../src/config/config.h"', ["src/config/config.h"]),
    ("proto/h1/parser.h", '"../../uring/ring.h"', ["uring/ring.h"]),
    ("src/balancer/balancer.h", '"../../uring/event_loop.h"', ["src/balancer", "uring"]),
    ("src/tls/session.h", '"./../../uring/ring.h"', ["src/tls", "uring"]),
    ("src/config/config.h", '"../route/router.h"', ["headers of src/config", "src/route"]),
    ("src/upstream/pool.h", '"../downstream/http_session.h"', ["src/downstream"]),
    ("proto/h1/body.h", '"../../tests/support/s.h"', ["test/benchmark"]),
    ("uring/ring.h", '"../../../etc/x.h"', ["outside the source tree"]),
    ("uring/ring.h", '"/usr/include/liburing.h"', ["absolute include path"]),
])
def test_relative_includes_are_resolved(tmp_path, capsys, rel, include, words):
    assert_fails(tmp_path, capsys, rel, include, *words)


def test_plain_name_resolves_in_the_including_folder(tmp_path, capsys):
    # "config.h" from src/route/ is not src/route/config.h; from src/balancer/
    # a plain name that exists beside it is that file.
    make_tree(tmp_path, {"src/balancer/ring.h": '#pragma once\n#include "ring.h"\n',
                         "uring/probe.h": '#pragma once\n#include "event_loop.h"\n',
                         "src/stats/latency.h": '#pragma once\n#include "../config/config.h"\n'})
    rc, out = run(tmp_path, capsys)
    assert rc == 1
    assert "src/stats/latency.h:2:" in out
    assert "src/balancer/ring.h" not in out and "uring/probe.h" not in out


@pytest.mark.parametrize("rel, include, words", [
    ("include/egw/log.h", "<src/config/config.h>", ["base", "src/config"]),
    ("proto/h1/parser.h", "<uring/ring.h>", ["proto", "uring"]),
    ("uring/ring.h", "<proto/h1/parser.h>", ["uring", "proto"]),
    ("uring/ring.h", "<egw/../../src/config/config.h>", ["src/config/config.h"]),
    ("src/balancer/balancer.h", "<src/upstream/http_connection.h>", ["src/upstream"]),
    ("src/route/router.h", "<uring/event_loop.h>", ["src/route", "uring"]),
    ("src/server/worker.h", "<tests/support/s.h>", ["test/benchmark"]),
])
def test_angle_bracket_project_paths_are_project_includes(tmp_path, capsys, rel, include, words):
    assert_fails(tmp_path, capsys, rel, include, *words)


@pytest.mark.parametrize("header", [
    "linux/io_uring.h", "liburing.h", "unistd.h", "sys/socket.h", "sys/uio.h", "fcntl.h",
    "poll.h", "sys/epoll.h", "netinet/in.h", "netinet/tcp.h", "arpa/inet.h", "netdb.h",
    "sys/mman.h", "sys/eventfd.h", "fstream",
])
def test_proto_does_not_include_io_headers(tmp_path, capsys, header):
    assert_fails(tmp_path, capsys, "proto/h1/body.h", f"<{header}>", "proto must not use")


def test_io_uring_header_counts_as_liburing(tmp_path, capsys):
    assert_fails(tmp_path, capsys, "include/egw/log.h", "<linux/io_uring.h>",
                 "base must not use liburing")


def test_quoted_library_headers_are_checked_too(tmp_path, capsys):
    assert_fails(tmp_path, capsys, "uring/ring.h", '"wolfssl/ssl.h"', "uring must not use wolfssl")


# Sub-layers inside src/.

@pytest.mark.parametrize("rel, include", [
    ("src/balancer/balancer.h", '"uring/event_loop.h"'),
    ("src/balancer/balancer.h", '"src/config/config.h"'),
    ("src/balancer/balancer.h", '"src/stats/latency.h"'),
    ("src/stats/latency.h", '"uring/ring.h"'),
    ("src/stats/latency.h", '"src/route/router.h"'),
    ("src/route/router.h", '"uring/event_loop.h"'),
    ("src/route/router.h", '"src/upstream/http_connection.h"'),
    ("src/route/router.h", '"src/balancer/balancer.h"'),
    ("src/config/config.h", '"src/route/router.h"'),
    ("src/config/loader.cc", '"src/upstream/http_connection.h"'),
    ("src/config/loader.cc", '"uring/ring.h"'),
    ("src/config/loader.cc", '"src/tls/session.h"'),
    ("src/tls/context.h", '"uring/ring.h"'),
    ("src/tls/context.h", '"src/config/config.h"'),
    ("src/tls/context.h", '"src/net/byte_stream.h"'),
    ("src/net/byte_stream.cc", '"src/proxy/exchange.h"'),
    ("src/net/byte_stream.cc", '"src/upstream/http_connection.h"'),
    ("src/net/byte_stream.cc", '"src/route/router.h"'),
    ("src/upstream/pool.h", '"src/proxy/exchange.h"'),
    ("src/http/forwarding.h", '"src/upstream/http_connection.h"'),
    ("src/http/forwarding.h", '"src/route/router.h"'),
    ("src/http/forwarding.h", '"src/proxy/exchange.h"'),
    ("src/http/forwarding.h", '"src/tls/session.h"'),
    ("src/upstream/pool.h", '"src/downstream/http_session.h"'),
    ("src/upstream/pool.h", '"src/route/router.h"'),
    ("src/upstream/pool.h", '"src/server/worker.h"'),
    ("src/proxy/exchange.cc", '"src/downstream/http_session.h"'),
    ("src/proxy/exchange.cc", '"src/server/worker.h"'),
    ("src/proxy/exchange.cc", '"src/load/runner.h"'),
    ("src/downstream/h3_session.cc", '"src/server/worker.h"'),
    ("src/downstream/session.h", '"src/load/runner.h"'),
    ("src/server/server.cc", '"src/load/runner.h"'),
    ("src/load/runner.cc", '"src/downstream/http_session.h"'),
    ("src/load/runner.cc", '"src/server/worker.h"'),
    ("src/load/runner.cc", '"src/upstream/http_connection.h"'),
    ("src/load/runner.cc", '"src/config/config.h"'),
    ("src/load/runner.cc", '"src/proxy/exchange.h"'),
])
def test_sublayer_rules(tmp_path, capsys, rel, include):
    me = "src/" + rel.split("/")[1]
    them = "src/" + include.strip('"').split("/")[1] if include.startswith('"src/') else "uring"
    assert_fails(tmp_path, capsys, rel, include, me, them)


@pytest.mark.parametrize("rel", ["src/route/regex.cc", "src/balancer/maglev.cc",
                                 "src/tls/session.cc", "src/config/loader.cc"])
def test_liburing_only_where_uring_is_allowed(tmp_path, capsys, rel):
    assert_fails(tmp_path, capsys, rel, "<liburing.h>", "must not use liburing")


def test_unknown_src_folder_needs_a_row(tmp_path, capsys):
    make_tree(tmp_path, {"src/nowhere/stream.h": '#pragma once\n#include "egw/log.h"\n'})
    rc, out = run(tmp_path, capsys)
    assert rc == 1
    assert "src/nowhere/stream.h:1: src/nowhere/ has no row" in out


def test_including_an_unknown_src_folder_fails(tmp_path, capsys):
    assert_fails(tmp_path, capsys, "src/proxy/exchange.h", '"src/nowhere/stream.h"', "src/nowhere")


# Known exceptions: allowed edges pass, new ones fail, gone ones are notes.

def test_known_exceptions_pass_and_missing_ones_are_notes(tmp_path, capsys):
    make_tree(tmp_path, {"src/downstream/tcp_session.cc": '#include "src/server/worker.h"\n'})
    rc, out = run(tmp_path, capsys)
    assert rc == 0, out
    assert "src/downstream/tcp_session.cc -> src/server/worker.h" not in out
    assert "note: known exception no longer occurs" in out
    assert "src/downstream/h1_session.cc -> src/server/worker.h" in out


def test_a_new_include_beside_a_known_exception_fails(tmp_path, capsys):
    make_tree(tmp_path, {"src/downstream/tcp_session.cc": ('#include "src/server/worker.h"\n'
                                                           '#include "src/server/server.h"\n')})
    rc, out = run(tmp_path, capsys)
    assert rc == 1
    assert "src/downstream/tcp_session.cc:2: src/downstream must not include src/server" in out
    assert "tcp_session.cc:1:" not in out


def test_known_exception_is_per_file(tmp_path, capsys):
    assert_fails(tmp_path, capsys, "src/tls/session.h", '"uring/event_loop.h"', "src/tls")


# The rules that were there before.

@pytest.mark.parametrize("rel, include, words", [
    ("uring/ring.h", '"src/http/message.h"', ["uring must not include src/http"]),
    ("uring/ring.h", '"proto/h1/parser.h"', ["uring must not include proto"]),
    ("proto/h1/body.h", '"uring/ring.h"', ["proto must not include uring"]),
    ("include/egw/log.h", '"src/config/config.h"', ["base must not include src/config"]),
    ("include/egw/log.h", '"uring/ring.h"', ["base must not include uring"]),
    ("proto/h1/body.h", "<sys/socket.h>", ["proto must not use I/O"]),
    ("proto/h1/body.h", "<liburing.h>", ["proto must not use liburing"]),
    ("uring/ring.h", "<wolfssl/ssl.h>", ["uring must not use wolfssl"]),
    ("include/egw/log.h", "<liburing.h>", ["base must not use liburing"]),
    ("proto/h1/body.h", "<re2/re2.h>", ["proto must not use re2"]),
    ("uring/ring.h", "<CLI/CLI.hpp>", ["uring must not use cli11"]),
    ("src/route/router.h", "<toml++/toml.hpp>", ["toml++ is used only in src/config/"]),
    ("src/server/runtime.cc", "<toml++/toml.h>", ["toml++ is used only in src/config/"]),
    ("proto/h1/body.h", "<gnutls/crypto.h>", ["GnuTLS crypto glue belongs in proto/quic/"]),
    ("src/proxy/exchange.cc", '"tests/support/http_backend.h"', ["test/benchmark"]),
    ("uring/ring.h", '"benchmarks/support/alloc_counter.h"', ["test/benchmark"]),
    ("src/server/worker.cc", "<gtest/gtest.h>", ["must not use test framework"]),
    ("uring/ring.h", "<benchmark/benchmark.h>", ["must not use test framework"]),
])
def test_existing_rules(tmp_path, capsys, rel, include, words):
    assert_fails(tmp_path, capsys, rel, include, *words)


def test_command_line_exit_code(tmp_path):
    make_tree(tmp_path, {"uring/ring.h": '#pragma once\n#include "../src/http/message.h"\n'})
    proc = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "uring/ring.h:2:" in proc.stdout
