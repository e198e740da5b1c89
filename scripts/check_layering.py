#!/usr/bin/env python3
"""Checks the layering rules of docs/architecture.md on every source file.

  include/egw/  base: C++ std, Linux headers, fmt
  uring/        base, liburing
  proto/        base, nghttp2, nghttp3, ngtcp2 (GnuTLS crypto glue only in proto/quic)
  src/          everything above; toml++ only in src/config/
  tests/, benchmarks/: anything

Exits 1 and names each offending include (file:line) when a rule is broken.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

# Project-internal prefixes, by layer.
LAYER_OF_PREFIX = {"egw/": "base", "uring/": "uring", "proto/": "proto", "src/": "src"}
ORDER = ["base", "uring", "proto", "src"]
# Which internal layers each layer may include (proto does not sit on uring:
# state machines are sans-I/O).
ALLOWED_INTERNAL = {
    "base": {"base"},
    "uring": {"base", "uring"},
    "proto": {"base", "proto"},
    "src": {"base", "uring", "proto", "src"},
}
# Third-party headers by library (prefix of the <...> path).
LIBS = {
    "liburing": ("liburing.h", "liburing/"),
    "toml": ("toml++/",),
    "nghttp2": ("nghttp2/",),
    "nghttp3": ("nghttp3/",),
    "ngtcp2": ("ngtcp2/",),
    "gnutls": ("gnutls/",),
    "wolfssl": ("wolfssl/",),
    "re2": ("re2/",),
    "xxhash": ("xxhash.h",),
    "fmt": ("fmt/",),
    "sockets": ("sys/socket.h", "netinet/", "arpa/inet.h"),
}
ALLOWED_LIBS = {
    "base": {"fmt", "sockets"},
    "uring": {"fmt", "liburing", "sockets"},
    "proto": {"fmt", "nghttp2", "nghttp3", "ngtcp2", "gnutls"},
    "src": {"fmt", "liburing", "nghttp2", "nghttp3", "ngtcp2", "gnutls", "wolfssl", "re2",
            "xxhash", "toml", "sockets"},
}


def layer_of_file(rel: str):
    if rel.startswith("include/egw/"):
        return "base"
    for prefix in ("uring/", "proto/", "src/"):
        if rel.startswith(prefix):
            return prefix.rstrip("/")
    return None


def lib_of(path: str):
    for lib, prefixes in LIBS.items():
        if any(path == p or path.startswith(p) for p in prefixes):
            return lib
    return None


def check_file(path: pathlib.Path, rel: str, layer: str):
    errors = []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        kind, inc = m.groups()
        if kind == '"':
            target = next((l for p, l in LAYER_OF_PREFIX.items() if inc.startswith(p)), None)
            if target is None:
                if inc.startswith("tests/") or inc.startswith("benchmarks/"):
                    errors.append(f"{rel}:{lineno}: {layer} must not include test/benchmark code ({inc})")
                continue
            if target not in ALLOWED_INTERNAL[layer]:
                errors.append(f"{rel}:{lineno}: layer '{layer}' must not include '{inc}' (layer '{target}')")
            continue
        lib = lib_of(inc)
        if lib is None:
            continue  # C/C++ standard or Linux header
        if lib not in ALLOWED_LIBS[layer]:
            errors.append(f"{rel}:{lineno}: layer '{layer}' must not use {lib} (<{inc}>)")
        if lib == "toml" and not rel.startswith("src/config/"):
            errors.append(f"{rel}:{lineno}: toml++ is used only in src/config/ (<{inc}>)")
        if lib == "gnutls" and layer == "proto" and not rel.startswith("proto/quic/"):
            errors.append(f"{rel}:{lineno}: GnuTLS crypto glue belongs in proto/quic/ (<{inc}>)")
    return errors


def main():
    errors = []
    checked = 0
    for path in sorted(ROOT.rglob("*")):
        if path.suffix not in (".h", ".cc", ".hpp", ".cpp"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("build"):
            continue
        layer = layer_of_file(rel)
        if layer is None:
            continue
        checked += 1
        errors.extend(check_file(path, rel, layer))
    if errors:
        print("layering violations:")
        for e in errors:
            print("  " + e)
        return 1
    print(f"layering: {checked} files follow docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
