"""TLS helpers for integration tests: a throwaway PKI made with the openssl
command-line tool, TLS-wrapped backends, and small clients (Python's ssl
module, curl, openssl s_client)."""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading

from egwtest import PatternChecker, pattern, recv_all, send_pattern


def _run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {p.stderr}")


class Pki:
    """A CA and leaf certificates in a temporary directory.

    Leaves carry SAN DNS names, EKU serverAuth + clientAuth, and are signed
    by the CA they name (self.ca by default)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="egw-pki-")
        self.ca = self.make_ca("ca", "ExpressGateway Test CA")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, tag, kind):
        key = self.path(f"{tag}.key")
        if kind == "rsa":
            _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", key], self.dir)
        else:
            _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", key], self.dir)
        return key

    def make_ca(self, tag, cn):
        key = self._key(tag, "ec")
        cert = self.path(f"{tag}.pem")
        _run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", "30",
              "-out", cert, "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
        return {"cert": cert, "key": key}

    def make_leaf(self, tag, cn, names, kind="ec", ca=None):
        ca = ca or self.ca
        key = self._key(tag, kind)
        csr = self.path(f"{tag}.csr")
        cert = self.path(f"{tag}.pem")
        ext = self.path(f"{tag}.ext")
        _run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr], self.dir)
        with open(ext, "w") as f:
            if names:
                f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca["cert"], "-CAkey", ca["key"],
              "-CAcreateserial", "-days", "30", "-out", cert, "-extfile", ext], self.dir)
        return {"cert": cert, "key": key}

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def cert_table(leaves):
    return "[ " + ", ".join(f'{{ cert = "{c["cert"]}", key = "{c["key"]}" }}' for c in leaves) + " ]"


def client_context(ca=None, alpn=None, version=None, cert=None, verify=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        ctx.load_cert_chain(cert["cert"], cert["key"])
    return ctx


def server_context(leaf, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf["cert"], leaf["key"])
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_names(addr, server_name, ca=None, **kw):
    """Connects with SNI `server_name` (None: none); returns (the served
    certificate's SAN DNS names, subject CN, negotiated version, ALPN)."""
    ctx = client_context(ca, verify=False, **kw)
    with socket.create_connection(addr, timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
            version, alpn = s.version(), s.selected_alpn_protocol()
    pem = ssl.DER_cert_to_PEM_cert(der)
    p = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                       input=pem, capture_output=True, text=True, timeout=10)
    sans = [t.strip()[4:] for t in p.stdout.split(",") if t.strip().startswith("DNS:")]
    if not sans:
        sans = [t.split("DNS:", 1)[1].strip() for t in p.stdout.splitlines() if "DNS:" in t]
    cn = ""
    for line in p.stdout.splitlines():
        if line.startswith("subject"):
            cn = line.split("CN", 1)[1].lstrip(" =").strip()
    return sans, cn, version, alpn


def s_client(addr, *args, data=b"", timeout=15):
    """Runs `openssl s_client` against addr; returns (rc, combined output)."""
    host, port = addr
    p = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", *args],
                       input=data, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def wrap_handler(ctx, handler):
    """A TcpBackend handler that serves `handler` over TLS with `ctx`."""

    def serve(conn, backend):
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            with backend.lock:
                backend.handshake_failures = getattr(backend, "handshake_failures", 0) + 1
            return
        try:
            handler(tls, backend)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    return serve


def name_handler(name):
    """Answers the first line with `name: <line>` (which backend served it),
    then closes."""

    def handler(conn, backend):
        buf = b""
        while True:
            try:
                d = conn.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not d:
                return
            buf += d
            if b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(name.encode() + b": " + line + b"\n")
                return

    return handler


def exact_pattern_handler(conn, backend):
    """Like egwtest.pattern_handler, but reads exactly `upload` bytes rather
    than up to EOF (TLS clients here do not half-close): header
    <upload, download, seed>, then both directions at once."""
    hdr = b""
    while len(hdr) < 24:
        d = conn.recv(24 - len(hdr))
        if not d:
            return
        hdr += d
    upload, download, seed = struct.unpack("<QQQ", hdr)
    checker = PatternChecker(seed)
    got = {"n": 0}

    def reader():
        while got["n"] < upload:
            d = conn.recv(min(262144, upload - got["n"]))
            if not d:
                break
            checker.feed(d)
            got["n"] += len(d)

    t = threading.Thread(target=reader)
    t.start()
    send_pattern(conn, seed + 1, download)
    t.join()
    with backend.lock:
        backend.results = getattr(backend, "results", [])
        backend.results.append((seed, got["n"] == upload and checker.bad_at is None, got["n"]))


def tls_pattern_exchange(sock, upload, download, seed):
    """Client side of exact_pattern_handler over a (TLS) socket used from
    one thread: all of the upload first, then the download (the proxy's
    directions are independent, so this cannot deadlock)."""
    sock.sendall(struct.pack("<QQQ", upload, download, seed))
    send_pattern(sock, seed, upload)
    checker = PatternChecker(seed + 1)
    n = 0
    while n < download:
        d = sock.recv(min(262144, download - n))
        if not d:
            break
        checker.feed(d)
        n += len(d)
    return n, checker.bad_at


__all__ = ["Pki", "cert_table", "client_context", "server_context", "peer_names", "s_client",
           "wrap_handler", "name_handler", "exact_pattern_handler", "tls_pattern_exchange",
           "pattern", "recv_all"]
