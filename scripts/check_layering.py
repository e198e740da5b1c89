#!/usr/bin/env python3
"""Checks the layering rules of docs/architecture.md on every source file.

Layers (what each may include):

  include/egw/  base: C++ std, Linux and POSIX headers (the "I/O" family), fmt
  uring/        base, liburing (with <linux/io_uring.h>), I/O
  proto/        base, fmt, nghttp2, nghttp3, ngtcp2 (GnuTLS crypto glue only
                in proto/quic/); no I/O headers: state machines are sans-I/O
  src/          base, uring, proto and every library; toml++ only in
                src/config/; each folder of src/ is a sub-layer (below)
  tests/, benchmarks/: anything; production code never includes them, nor
                the test frameworks (gtest, gmock, Google Benchmark)

Sub-layers inside src/ (what a file in the folder may include besides its
own folder):

  src/balancer/    base, proto
  src/stats/       base, proto
  src/route/       base, proto, config
  src/config/      base, proto, balancer; its .cc files (the loader, which
                   validates regexes and CIDRs) also route. Headers of
                   src/config/ never include src/route/, so route -> config
                   is the only header edge and there is no include cycle.
  src/tls/         base, proto (sans-I/O wolfSSL code: no uring)
  src/net/         base, uring, proto, tls, config, stats (the adapters:
                   byte streams over uring sockets and tls sessions)
  src/http/        base, uring, proto, config (the forwarding policy and
                   HTTP/1.1 wire helpers both codecs share)
  src/upstream/    base, uring, proto, config, balancer, stats, tls, net, http
  src/proxy/       base, uring, proto, config, route, balancer, stats, tls,
                   net, http, upstream (the exchange: it drives the upstream
                   side, so upstream never includes proxy)
  src/downstream/  everything except server and load
  src/server/      everything except load
  src/load/        base, uring, proto, balancer, stats, route, tls, net,
                   http (the load generator: not downstream, server,
                   upstream or config)
  src/main.cc      anything

A sub-layer that may not include uring/ may not use liburing either. A folder
of src/ missing from the table is an error until it gets a row.

How includes are classified: a quoted include is looked up the way the
compiler does, in the including file's folder first ("./x.h", "../x.h" and
plain names), then from the repository root and from include/; an angle
include only from the root and include/. So "../src/http/message.h" and
<src/config/config.h> are project includes of the layer they resolve to. An
include that resolves to no project file is a library or system header and
is checked against the library families below, quoted or not.

KNOWN_EXCEPTIONS lists the edges that break a rule today and are due to go;
any other violation fails. An exception that no longer occurs is reported as
a note, so the list can be shrunk.

Usage: check_layering.py [--root DIR] (default: this checkout). Exits 1 and
names each offending include (file:line) when a rule is broken.
"""
import argparse
import pathlib
import posixpath
import re
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\s*#\s*include(?:_next)?\s*([<"])([^>"]+)[>"]')
SOURCE_SUFFIXES = {".h", ".hh", ".hpp", ".c", ".cc", ".cpp", ".cxx", ".ipp", ".inl", ".tcc"}
# The folders that hold production code, and where the compiler looks for
# project includes (CMakeLists.txt: target_include_directories(... include
# ${CMAKE_SOURCE_DIR})).
SOURCE_DIRS = ("include/egw", "uring", "proto", "src")
INCLUDE_DIRS = ("", "include")

ALLOWED_INTERNAL = {
    "base": {"base"},
    "uring": {"base", "uring"},
    "proto": {"base", "proto"},  # not uring: state machines are sans-I/O
    "src": {"base", "uring", "proto", "src"},
}

# Third-party and system header families (prefixes of the include path).
LIBS = {
    "liburing": ("liburing.h", "liburing/", "linux/io_uring.h", "linux/io_uring/"),
    "I/O": ("unistd.h", "fcntl.h", "poll.h", "netdb.h", "sys/socket.h", "sys/uio.h",
           "sys/epoll.h", "sys/select.h", "sys/sendfile.h", "sys/mman.h", "sys/eventfd.h",
           "sys/timerfd.h", "sys/signalfd.h", "sys/un.h", "sys/ioctl.h", "netinet/",
           "arpa/", "linux/tls.h", "linux/tcp.h", "fstream", "iostream"),
    "toml++": ("toml++/",),
    "nghttp2": ("nghttp2/",),
    "nghttp3": ("nghttp3/",),
    "ngtcp2": ("ngtcp2/",),
    "gnutls": ("gnutls/",),
    "wolfssl": ("wolfssl/",),
    "re2": ("re2/",),
    "xxhash": ("xxhash.h",),
    "fmt": ("fmt/",),
    "cli11": ("CLI/",),
    "libsystemd": ("systemd/",),
    "nlohmann-json": ("nlohmann/",),
    "test framework": ("gtest/", "gmock/", "benchmark/"),
}
ALLOWED_LIBS = {
    "base": {"fmt", "I/O"},
    "uring": {"fmt", "liburing", "I/O"},
    "proto": {"fmt", "nghttp2", "nghttp3", "ngtcp2", "gnutls"},
    "src": {"fmt", "liburing", "I/O", "nghttp2", "nghttp3", "ngtcp2", "gnutls", "wolfssl",
            "re2", "xxhash", "toml++", "cli11", "libsystemd", "nlohmann-json"},
}

# Sub-layers of src/: what each may include besides its own folder ("base",
# "uring", "proto" are the layers; other names are folders of src/).
SUBLAYERS = ("accesslog", "balancer", "stats", "route", "config", "tls", "net", "http", "upstream",
             "proxy", "downstream", "server", "load", "ctl", "main.cc")
_ALL = {"base", "uring", "proto", *SUBLAYERS}
SUBLAYER_ALLOWED = {
    # access log formats (pure) and their per-worker io_uring writers
    "accesslog": {"base", "uring", "proto"},
    "balancer": {"base", "proto"},
    "stats": {"base", "proto"},
    "route": {"base", "proto", "config"},
    "config": {"base", "proto", "balancer", "route", "accesslog"},  # route, accesslog: .cc only
    "tls": {"base", "proto"},
    "net": {"base", "uring", "proto", "tls", "config", "stats"},
    "http": {"base", "uring", "proto", "config"},
    "upstream": {"base", "uring", "proto", "config", "balancer", "stats", "tls", "net", "http"},
    "proxy": {"base", "uring", "proto", "config", "route", "balancer", "stats", "tls", "net",
              "http", "upstream", "accesslog"},
    "downstream": _ALL - {"server", "load", "ctl", "main.cc"},
    "server": _ALL - {"load", "ctl", "main.cc"},
    "load": {"base", "uring", "proto", "balancer", "stats", "route", "tls", "net", "http"},
    # the admin client: reads a config for the socket path, speaks JSON
    "ctl": {"base", "config"},
    "main.cc": _ALL,
}
# Includes a sub-layer may make only from its .cc files.
SOURCE_ONLY = {"config": {"route", "accesslog"}}

# (file, included file) edges that break a rule today and are due to go.
KNOWN_EXCEPTIONS = {
    # removed by the HTTP refactor: sessions reach the worker through a small
    # interface declared below both layers
    ("src/downstream/connection.cc", "src/server/worker.h"),
    ("src/downstream/h1_session.cc", "src/server/worker.h"),
    ("src/downstream/h2_session.cc", "src/server/worker.h"),
    ("src/downstream/tcp_session.cc", "src/server/worker.h"),
    ("src/downstream/proxy_reader.cc", "src/server/worker.h"),
}


def layer_of(rel: str):
    """The layer and src/ sub-layer of a repository path, or (None, None)."""
    if rel.startswith("include/egw/"):
        return "base", None
    head, _, rest = rel.partition("/")
    if head in ("uring", "proto"):
        return head, None
    if head == "src" and rest:
        folder, sep, _ = rest.partition("/")
        return "src", (folder if sep else rest)
    return None, None


def name_of(layer, sub):
    return f"src/{sub}" if sub is not None else layer


def lib_of(inc: str):
    for lib, prefixes in LIBS.items():
        if any(inc == p or (p.endswith("/") and inc.startswith(p)) for p in prefixes):
            return lib
    return None


def resolve(root: pathlib.Path, rel: str, kind: str, inc: str):
    """The repository path an include names, or None for a library or system
    header. Returns ("outside", path) when a relative include leaves the tree."""
    dirs = ([posixpath.dirname(rel)] if kind == '"' else []) + list(INCLUDE_DIRS)
    candidates = [posixpath.normpath(posixpath.join(d, inc)) for d in dirs]
    for c in candidates:
        if not c.startswith("../") and c != ".." and (root / c).is_file():
            return c
    # Not on disk: classify by the name alone.
    if kind == '"' and (inc.startswith("./") or inc.startswith("../")):
        c = candidates[0]
        return ("outside", c) if c == ".." or c.startswith("../") else c
    for c in candidates[len(candidates) - len(INCLUDE_DIRS):]:
        if layer_of(c)[0] is not None or c.split("/", 1)[0] in ("tests", "benchmarks"):
            return c
    return None


def check_file(root: pathlib.Path, rel: str, exceptions_seen: set):
    errors = []
    layer, sub = layer_of(rel)
    me = name_of(layer, sub)
    is_header = pathlib.PurePosixPath(rel).suffix in {".h", ".hh", ".hpp", ".ipp", ".inl",
                                                       ".tcc"}
    text = (root / rel).read_text(errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        kind, inc = m.groups()
        shown = f"<{inc}>" if kind == "<" else f'"{inc}"'
        where = f"{rel}:{lineno}"
        if inc.startswith("/"):
            errors.append(f"{where}: absolute include path {shown}; name project files from "
                          f"the repository root or include/")
            continue
        target = resolve(root, rel, kind, inc)

        if target is None:  # a library or system header
            lib = lib_of(inc)
            if lib is None:
                continue  # C/C++ standard or Linux header
            if lib not in ALLOWED_LIBS[layer]:
                errors.append(f"{where}: {me} must not use {lib}: {shown}")
            elif lib == "liburing" and sub is not None and "uring" not in SUBLAYER_ALLOWED.get(sub, _ALL):
                errors.append(f"{where}: {me} must not use liburing: {shown} "
                              f"(it may not include uring/ either)")
            if lib == "toml++" and not rel.startswith("src/config/"):
                errors.append(f"{where}: toml++ is used only in src/config/ ({shown})")
            if lib == "gnutls" and layer == "proto" and not rel.startswith("proto/quic/"):
                errors.append(f"{where}: GnuTLS crypto glue belongs in proto/quic/ ({shown})")
            continue

        if isinstance(target, tuple):
            errors.append(f"{where}: {shown} resolves to {target[1]}, outside the source tree")
            continue
        via = "" if target == inc else f" (resolves to {target})"
        if target.split("/", 1)[0] in ("tests", "benchmarks"):
            errors.append(f"{where}: {me} must not include test/benchmark code: {shown}{via}")
            continue
        t_layer, t_sub = layer_of(target)
        if t_layer is None:
            errors.append(f"{where}: {shown}{via} is not in a layer "
                          f"(include/egw/, uring/, proto/, src/)")
            continue
        them = name_of(t_layer, t_sub)
        if t_layer not in ALLOWED_INTERNAL[layer]:
            errors.append(f"{where}: {me} must not include {them}: {shown}{via}")
            continue
        if sub is None or sub not in SUBLAYER_ALLOWED:
            continue  # not in src/, or an unknown folder (reported once per folder)
        if t_sub is None:
            t_key = t_layer
        elif t_sub not in SUBLAYER_ALLOWED:
            errors.append(f"{where}: {shown}{via} is in src/{t_sub}, which has no row in "
                          f"the sub-layer table of scripts/check_layering.py")
            continue
        else:
            t_key = t_sub
        if t_key == sub:
            continue
        ok = t_key in SUBLAYER_ALLOWED[sub]
        if ok and is_header and t_key in SOURCE_ONLY.get(sub, ()):
            if (rel, target) in KNOWN_EXCEPTIONS:
                exceptions_seen.add((rel, target))
                continue
            errors.append(f"{where}: headers of {me} must not include {them}: {shown}{via} "
                          f"(only its .cc files may, so that {them} -> {me} is no cycle)")
            continue
        if ok:
            continue
        if (rel, target) in KNOWN_EXCEPTIONS:
            exceptions_seen.add((rel, target))
            continue
        errors.append(f"{where}: {me} must not include {them}: {shown}{via}")
    return errors


def source_files(root: pathlib.Path):
    for d in SOURCE_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file():
                yield path.relative_to(root).as_posix()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT,
                        help="repository root to check (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    errors = []
    seen = set()
    unknown_folders = {}
    checked = 0
    for rel in source_files(root):
        layer, sub = layer_of(rel)
        if layer is None:
            continue
        checked += 1
        if sub is not None and sub not in SUBLAYER_ALLOWED:
            unknown_folders.setdefault(sub, rel)
        errors.extend(check_file(root, rel, seen))
    for sub, rel in sorted(unknown_folders.items()):
        what = f"src/{sub}/" if "/" in rel[len("src/"):] else f"src/{sub}"
        errors.append(f"{rel}:1: {what} has no row in the sub-layer table of "
                      f"scripts/check_layering.py (SUBLAYER_ALLOWED)")

    for rel, target in sorted(KNOWN_EXCEPTIONS - seen):
        print(f"note: known exception no longer occurs, remove it from KNOWN_EXCEPTIONS: "
              f"{rel} -> {target}")
    if errors:
        print("layering violations:")
        for e in errors:
            print("  " + e)
        return 1
    print(f"layering: {checked} files follow docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
