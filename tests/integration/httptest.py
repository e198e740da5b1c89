"""A recording HTTP/1.1 origin for integration tests (raw sockets, strict
enough to notice a desync), and raw-socket client helpers."""
import hashlib
import json
import socket
import threading
import time

from egwtest import TcpBackend, pattern, PatternChecker


class Request:
    def __init__(self, method, target, version, headers, body_len, body_hash, conn_id, trailers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.body_len = body_len
        self.body_hash = body_hash
        self.conn_id = conn_id
        self.trailers = trailers

    def header(self, name):
        vals = [v for n, v in self.headers if n.lower() == name.lower()]
        return vals[0] if vals else None

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(262144)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def exactly(self, n, sink):
        while n > 0:
            if not self.buf:
                self.fill()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            sink(take)
            n -= len(take)


def read_body(r, headers, sink):
    """Reads a request/response body per its framing; returns trailers."""
    hmap = {n.lower(): v for n, v in headers}
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        while True:
            size = int(r.line().split(b";")[0], 16)
            if size == 0:
                trailers = []
                while True:
                    l = r.line()
                    if not l:
                        return trailers
                    n, v = l.split(b":", 1)
                    trailers.append((n.decode(), v.strip().decode()))
            r.exactly(size, sink)
            assert r.line() == b""
    n = int(hmap.get("content-length", "0"))
    r.exactly(n, sink)
    return []


def parse_head(head):
    lines = head.split(b"\r\n")
    start = lines[0].decode()
    headers = []
    for l in lines[1:]:
        n, v = l.split(b":", 1)
        headers.append((n.decode(), v.strip().decode()))
    return start, headers


class HttpBackend:
    """Serves per path:
      /size/N          N pattern bytes (seed 1), Content-Length
      /chunked/N       N pattern bytes chunked, with a trailer
      /until-close/N   N pattern bytes, delimited by the close
      /echo            the request body back (Content-Length)
      /headers         the request head as JSON
      /close           answers with Connection: close, then closes
      /status/N        status N (no body for 1xx/204/304)
      /sleep/MS        waits MS ms, then answers
      /early/N         answers 413-ish before reading the body... (answers 200 at once)
      anything else    200 "hello"
    A target with "slowread" in it has its request body read slowly.
    Records every request (method, target, headers, body length and hash)."""

    def __init__(self, host="127.0.0.1"):
        self.requests = []
        self.lock = threading.Lock()
        self.next_conn = 0
        self.tcp = TcpBackend(self._serve, host=host)

    @property
    def address(self):
        return self.tcp.address

    @property
    def connections(self):
        return self.tcp.accepted

    def stop(self):
        self.tcp.stop()

    def _serve(self, conn, _):
        with self.lock:
            self.next_conn += 1
            conn_id = self.next_conn
        r = Reader(conn)
        while True:
            try:
                head = r.head()
            except (EOFError, OSError):
                return
            start, headers = parse_head(head)
            method, target, version = start.split(" ")
            h = hashlib.sha256()
            n = [0]

            slow = "slowread" in target

            def sink(b):
                h.update(b)
                n[0] += len(b)
                if slow:
                    time.sleep(0.001)  # a backend that reads slowly (about 100 MB/s at most)

            path = target.split("?")[0]
            if path.startswith("/early"):
                # Answer before reading the body, then close.
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
                return
            if any(n_.lower() == "expect" for n_, _ in headers) and not path.startswith("/noexpect"):
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                trailers = read_body(r, headers, sink)
            except (EOFError, OSError):
                return  # a truncated request (the client, or the proxy, gave up)
            req = Request(method, target, version, headers, n[0], h.hexdigest(), conn_id, trailers)
            with self.lock:
                self.requests.append(req)
            if not self.respond(conn, req, path):
                return

    def respond(self, conn, req, path):
        parts = path.split("/")
        head_only = req.method == "HEAD"
        if path.startswith("/size/"):
            n = int(parts[2])
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            if not head_only:
                off = 0
                while off < n:
                    k = min(1 << 20, n - off)
                    conn.sendall(pattern(1, off, k))
                    off += k
            return True
        if path.startswith("/chunked/"):
            n = int(parts[2])
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n")
            if head_only:
                return True
            off = 0
            while off < n:
                k = min(16384 + 7, n - off)
                conn.sendall(f"{k:x}\r\n".encode() + pattern(1, off, k) + b"\r\n")
                off += k
            conn.sendall(b"0\r\nx-checksum: done\r\n\r\n")
            return True
        if path.startswith("/until-close/"):
            n = int(parts[2])
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            off = 0
            while off < n:
                k = min(1 << 20, n - off)
                conn.sendall(pattern(1, off, k))
                off += k
            return False
        if path == "/echo":
            # Echo the body (kept as its hash + length; send length + hash).
            body = json.dumps({"len": req.body_len, "sha256": req.body_hash,
                               "trailers": req.trailers}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            return True
        if path == "/headers":
            body = json.dumps({"method": req.method, "target": req.target, "version": req.version,
                               "headers": req.headers}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\nX-Backend: yes\r\nX-Remove-Me: 1\r\n\r\n".encode()
                         + body)
            return True
        if path == "/close":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nclosed")
            return False
        if path.startswith("/status/"):
            s = int(parts[2])
            if s < 200 or s in (204, 304):
                conn.sendall(f"HTTP/1.1 {s} X\r\n\r\n".encode())
                if s < 200:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
            else:
                conn.sendall(f"HTTP/1.1 {s} X\r\nContent-Length: 3\r\n\r\nabc".encode())
            return True
        if path.startswith("/reset"):
            # Close without answering: a reset before any response byte.
            with self.lock:
                self.resets = getattr(self, "resets", 0) + 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return False
        if path.startswith("/sleep/"):
            time.sleep(int(parts[2]) / 1000)
        body = b"hello"
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                     + (b"" if head_only else body))
        return True


def http_exchange(addr, raw, timeout=10, read_until_close=True, pause=0.0):
    """Sends raw bytes (or a list of pieces, `pause` seconds before each);
    returns everything read until close (or timeout)."""
    s = socket.create_connection(addr, timeout=timeout)
    for piece in ([raw] if isinstance(raw, bytes) else raw):
        if pause:
            time.sleep(pause)
        s.sendall(piece)
    out = read_to_eof(s, first_only=not read_until_close)
    s.close()
    return out


def read_to_eof(s, first_only=False):
    """Everything `s` delivers until EOF, a reset or its timeout (or only
    the first piece)."""
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if first_only:
                break
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else None


class Responses:
    """Reads successive HTTP/1.1 responses from a socket."""

    def __init__(self, sock, head_requests=()):
        self.r = Reader(sock)

    def next(self, head=False):
        hd = self.r.head()
        start, headers = parse_head(hd)
        status = int(start.split(" ")[1])
        body = bytearray()
        if not head and status >= 200 and status not in (204, 304):
            hmap = {n.lower(): v for n, v in headers}
            if "content-length" in hmap or "chunked" in hmap.get("transfer-encoding", ""):
                read_body(self.r, headers, body.extend)
            else:
                try:
                    while True:
                        self.r.fill()
                except EOFError:
                    body.extend(self.r.buf)
                    self.r.buf = b""
        return status, dict((n.lower(), v) for n, v in headers), bytes(body)


class WebSocketEchoBackend:
    """A python3-websockets echo server on 127.0.0.1:0 in a thread; records
    each handshake's request headers. stop() ends it."""

    def __init__(self):
        import asyncio
        import websockets
        self.headers = []
        ready = threading.Event()
        state = {}

        def serve():
            async def echo(ws, path=None):
                req = getattr(ws, "request", None)
                self.headers.append(dict(req.headers) if req else dict(ws.request_headers))
                async for msg in ws:
                    await ws.send(msg)

            async def main():
                server = await websockets.serve(echo, "127.0.0.1", 0)
                state["port"] = server.sockets[0].getsockname()[1]
                state["loop"] = asyncio.get_running_loop()
                state["stop"] = asyncio.Event()
                ready.set()
                await state["stop"].wait()
                server.close()
                await server.wait_closed()

            asyncio.run(main())

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(10), "websocket backend did not start"
        self._state = state
        self.address = f"127.0.0.1:{state['port']}"

    def stop(self):
        self._state["loop"].call_soon_threadsafe(self._state["stop"].set)
        self._thread.join(5)
