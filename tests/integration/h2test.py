"""A small HTTP/2 client for the tests, on python3-h2 (the protocol) over a
plain or TLS socket, plus raw frame writing for what a well-behaved client
never sends (floods, malformed frames)."""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 frame types and error codes used in the tests.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0, 1, 2, 7, 0xb


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def parse_frames(buf):
    """Splits complete frames off `buf`: ([(type, flags, stream, payload)], rest)."""
    out = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
        buf = buf[9 + n:]
    return out, buf


class Stream:
    def __init__(self):
        self.headers = None   # final response head (list of (name, value) str)
        self.informational = []
        self.data = bytearray()
        self.trailers = None
        self.ended = False
        self.reset = None     # error code of a RST_STREAM
        self.window_open = False

    @property
    def status(self):
        return int(dict(self.headers)[":status"]) if self.headers else None

    def header(self, name):
        return [v for n, v in (self.headers or []) if n == name]


class H2Client:
    """One HTTP/2 connection. `validate=False` lets a test send what the
    library would refuse (upper-case names, connection fields)."""

    def __init__(self, addr, tls_context=None, server_hostname="localhost", validate=True,
                 timeout=10.0, window=1 << 24):
        sock = socket.create_connection(addr, timeout=timeout)
        if tls_context is not None:
            sock = tls_context.wrap_socket(sock, server_hostname=server_hostname)
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        self.sock = sock
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                                         h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(window)
        self.streams = {}
        self.goaway = None    # (error_code, last_stream_id) of the last GOAWAY
        self.goaways = []
        self.closed = False
        self.remote_settings_seen = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None, end=True, authority="localhost",
                scheme="http"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(headers)
        self.streams[sid] = Stream()
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid, body, end=True, deadline=30.0):
        view = memoryview(body)
        limit = time.monotonic() + deadline
        while view:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0 or
                          self.streams[sid].reset is not None, timeout=limit - time.monotonic())
                if self.streams[sid].reset is not None:
                    return
                continue
            n = min(room, len(view))
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def _on(self, ev):
        s = self.streams.get(getattr(ev, "stream_id", None) or 0)
        if isinstance(ev, h2.events.ResponseReceived):
            s.headers = ev.headers
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            s.informational.append(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if s is not None:
                s.data += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            s.trailers = ev.headers
        elif isinstance(ev, h2.events.StreamEnded):
            s.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if s is not None:
                s.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
            self.goaways.append(self.goaway)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True

    def pump(self, until, timeout=10.0):
        """Reads and handles events until until() holds, the connection
        closes, or the timeout passes; returns until()."""
        end = time.monotonic() + max(timeout, 0.01)
        while not until():
            if self.closed:
                return until()
            left = end - time.monotonic()
            if left <= 0:
                return until()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                return until()
            except (ConnectionResetError, OSError):
                self.closed = True
                continue
            if not data:
                self.closed = True
                continue
            try:
                for ev in self.conn.receive_data(data):
                    self._on(ev)
            except h2.exceptions.ProtocolError:
                self.closed = True
            try:
                self.flush()
            except OSError:
                self.closed = True
        return True

    def wait(self, sid, timeout=20.0):
        s = self.streams[sid]
        self.pump(lambda: s.ended or s.reset is not None, timeout)
        return s

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawH2:
    """A client that writes frames itself (after a valid preface and
    SETTINGS) and reads the server's frames as they are."""

    def __init__(self, addr, timeout=10.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.frames = []
        self.eof = False
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def headers_block(self, path="/", method="GET", extra=(), authority="localhost"):
        return self.enc.encode([(":method", method), (":scheme", "http"),
                                (":authority", authority), (":path", path)] + list(extra))

    def read_until(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while not pred(self):
            if self.eof:
                return pred(self)
            left = end - time.monotonic()
            if left <= 0:
                return pred(self)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                self.eof = True
                continue
            if not data:
                self.eof = True
                continue
            self.buf += data
            got, self.buf = parse_frames(self.buf)
            for f in got:
                if f[0] == SETTINGS and not (f[1] & ACK):
                    self.send(frame(SETTINGS, ACK, 0))
            self.frames += got
        return True

    def goaway_code(self):
        for t, _, _, p in self.frames:
            if t == GOAWAY and len(p) >= 8:
                last = int.from_bytes(p[:4], "big") & 0x7FFFFFFF
                if last != 0x7FFFFFFF:
                    return int.from_bytes(p[4:8], "big")
        return None

    def goaways(self):
        """Every GOAWAY as (last_stream_id, error_code), the notice included."""
        return [(int.from_bytes(p[:4], "big") & 0x7FFFFFFF, int.from_bytes(p[4:8], "big"))
                for t, _, _, p in self.frames if t == GOAWAY and len(p) >= 8]

    def ended(self, stream):
        """The server ended `stream` (END_STREAM on HEADERS or DATA)."""
        return any(s == stream and t in (HEADERS, DATA) and f & END_STREAM
                   for t, f, s, _ in self.frames)

    def body(self, stream):
        return b"".join(p for t, _, s, p in self.frames if t == DATA and s == stream)

    def rst_code(self, stream):
        for t, _, s, p in self.frames:
            if t == RST_STREAM and s == stream:
                return int.from_bytes(p[:4], "big")
        return None

    def status(self, stream):
        dec = getattr(self, "_dec", None) or hpack.Decoder()
        self._dec = dec
        for t, fl, s, p in self.frames[getattr(self, "_decoded", 0):]:
            self._decoded = getattr(self, "_decoded", 0) + 1
            if t == HEADERS:
                if fl & 0x8:  # PADDED
                    p = p[1:len(p) - p[0]]
                if fl & 0x20:  # PRIORITY
                    p = p[5:]
                hdrs = dec.decode(p)
                self._heads = getattr(self, "_heads", {})
                self._heads.setdefault(s, []).append(dict(hdrs))
        heads = getattr(self, "_heads", {}).get(stream, [])
        for h in heads:
            st = h.get(":status") or h.get(b":status")
            if st is not None:
                st = int(st)
                if st >= 200:
                    return st
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
