"""Helpers for integration tests: the real expressgateway binary, real
loopback backends, deterministic byte patterns.

Every server binds port 0 on loopback; every wait is bounded.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("EGW_BUILD_DIR", os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "expressgateway")


def sanitized_build():
    """The binaries under test are the ASan + UBSan build (whose allocator
    keeps freed memory in quarantine: RSS bounds do not apply)."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "CMAKE_BUILD_TYPE:STRING=Sanitize" in f.read()
    except OSError:
        return False


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- deterministic data ----------------------------------------------------

_PERIOD = 1048573  # prime: a lost, repeated or reordered chunk shows up as a mismatch
_blocks = {}


def _block(seed):
    b = _blocks.get(seed)
    if b is None:
        out = bytearray()
        i = 0
        while len(out) < _PERIOD:
            out += hashlib.sha256(struct.pack("<QQ", seed, i)).digest()
            i += 1
        b = bytes(out[:_PERIOD]) * 2  # doubled so any window up to _PERIOD is one slice
        _blocks[seed] = b
    return b


def pattern(seed: int, offset: int, n: int) -> bytes:
    """Bytes [offset, offset+n) of a seeded stream with a prime period."""
    b = _block(seed)
    out = []
    while n > 0:
        start = offset % _PERIOD
        take = min(n, _PERIOD)
        out.append(b[start:start + take])
        offset += take
        n -= take
    return b"".join(out)


class PatternChecker:
    """Checks a received stream against pattern(seed) incrementally."""

    def __init__(self, seed):
        self.seed = seed
        self.offset = 0
        self.bad_at = None

    def feed(self, data: bytes):
        if self.bad_at is None and data != pattern(self.seed, self.offset, len(data)):
            expect = pattern(self.seed, self.offset, len(data))
            i = next(i for i in range(len(data)) if data[i] != expect[i])
            self.bad_at = self.offset + i
        self.offset += len(data)


def send_pattern(sock, seed, total, chunk=65536):
    off = 0
    while off < total:
        n = min(chunk, total - off)
        sock.sendall(pattern(seed, off, n))
        off += n


def recv_all(sock, limit=1 << 40, checker=None):
    total = 0
    while total < limit:
        data = sock.recv(min(262144, limit - total))
        if not data:
            break
        if checker:
            checker.feed(data)
        total += len(data)
    return total


# --- the gateway -------------------------------------------------------------

class Gateway:
    """Runs build/expressgateway on a config written to a temp file."""

    def __init__(self, config_text, workers=None, extra_args=(), log_level=None, env=None,
                 binary=None):
        self.dir = tempfile.mkdtemp(prefix="egw-")
        self.config_path = os.path.join(self.dir, "gateway.toml")
        self.log_path = os.path.join(self.dir, "gateway.log")
        self.write_config(config_text)
        args = [binary or BINARY, "-c", self.config_path]
        if workers:
            args += ["--workers", str(workers)]
        if log_level:
            args += ["--log-level", log_level]
        args += list(extra_args)
        self.log_file = open(self.log_path, "wb")
        penv = dict(os.environ)
        penv.update(env or {})
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=penv)
        self.generation = 1
        self.addresses = {}
        self._wait_ready(1)

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def _wait_ready(self, generation, timeout=15):
        pat = re.compile(r"ready: generation (\d+), \d+ workers, listening on (.*)")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            for m in pat.finditer(self.log()):
                if int(m.group(1)) == generation:
                    self._parse_addresses(m.group(2))
                    return True
            return False

        wait_until(ready, timeout, what=f"gateway ready (generation {generation})")

    def _parse_addresses(self, text):
        self.addresses = {}
        for item in text.split(", "):
            name, rest = item.split("=", 1)
            addr = rest.split(" ")[0]
            self.addresses.setdefault(name, []).append(addr)

    def address(self, listener, index=0):
        """(host, port) of a listener's bind address (port 0 resolved)."""
        text = self.addresses[listener][index]
        host, port = text.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def reload(self, config_text=None, expect_ok=True, timeout=10):
        if config_text is not None:
            self.write_config(config_text)
        before = self.log().count("reload failed")
        self.proc.send_signal(signal.SIGHUP)
        if expect_ok:
            self.generation += 1
            self._wait_ready(self.generation, timeout)
        else:
            wait_until(lambda: self.log().count("reload failed") > before, timeout,
                       what="reload failure")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_file.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log_file.close()

    def cleanup(self):
        # Keep the directory (config and log) when the test failed and the
        # developer wants to look: EGW_KEEP_LOGS=1.
        if not os.environ.get("EGW_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)


def run_check(config_text):
    """Runs --check on `config_text`; returns (exit code, output)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config_text)
        path = f.name
    try:
        p = subprocess.run([BINARY, "--check", "-c", path], capture_output=True, text=True,
                           timeout=30)
        return p.returncode, (p.stdout + p.stderr).replace(path, "FILE")
    finally:
        os.unlink(path)


# --- backends -----------------------------------------------------------------

class TcpBackend:
    """A threaded TCP server on 127.0.0.1:0. `handler(conn, backend)` serves a
    connection; the backend counts connections and can stop and start on the
    same port (to simulate an endpoint going away and coming back)."""

    def __init__(self, handler, port=0, host="127.0.0.1"):
        self.handler = handler
        self.host = host
        self.accepted = 0
        self.active = 0
        self.lock = threading.Lock()
        self.conns = set()
        self._listen(port)

    def _listen(self, port):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, port))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    def _accept_loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.active += 1
                self.conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
                self.conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def stop(self, reset_connections=True):
        """Stops listening (connects are refused) and optionally resets
        every open connection."""
        self.running = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if reset_connections:
            with self.lock:
                for c in list(self.conns):
                    try:
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        c.close()
                    except OSError:
                        pass

    def start(self):
        """Listens again on the same port."""
        self._listen(self.port)


def echo_handler(conn, backend):
    while True:
        data = conn.recv(262144)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def pattern_handler(conn, backend):
    """Protocol: the client sends 24 bytes <upload, download, seed>; the
    server reads `upload` pattern bytes (seed) and checks them, while it sends
    `download` pattern bytes (seed+1); then it sends FIN and, after reading the
    client's FIN, one status byte is not possible (already shut) so the result
    of the upload check is reported by closing with RST when bad."""
    hdr = b""
    while len(hdr) < 24:
        d = conn.recv(24 - len(hdr))
        if not d:
            return
        hdr += d
    upload, download, seed = struct.unpack("<QQQ", hdr)
    checker = PatternChecker(seed)
    result = {}

    def reader():
        result["n"] = recv_all(conn, upload + 1, checker)

    t = threading.Thread(target=reader)
    t.start()
    send_pattern(conn, seed + 1, download)
    conn.shutdown(socket.SHUT_WR)
    t.join()
    ok = result.get("n") == upload and checker.bad_at is None
    with backend.lock:
        backend.results = getattr(backend, "results", [])
        backend.results.append((seed, ok, result.get("n"), checker.bad_at))


def pattern_client(addr, upload, download, seed, timeout=60):
    """Runs one pattern_handler exchange through `addr`; returns
    (bytes downloaded and verified, first bad offset or None)."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(struct.pack("<QQQ", upload, download, seed))
        checker = PatternChecker(seed + 1)
        got = {}

        def reader():
            got["n"] = recv_all(s, download + 1, checker)

        t = threading.Thread(target=reader)
        t.start()
        send_pattern(s, seed, upload)
        s.shutdown(socket.SHUT_WR)
        t.join(timeout)
        return got.get("n"), checker.bad_at
    finally:
        s.close()
