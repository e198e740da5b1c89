"""An HTTP/2 origin (python3-h2) for the gateway's HTTP/2 upstream tests:
cleartext prior knowledge, one thread per connection, flow control
respected both ways. What it saw is kept for the tests to assert on.

Paths (the query is ignored unless said):
  /echo          200, JSON: method, path, authority, scheme, headers, trailers,
                 body length and sha256
  /bytes?n=N     200 with N pattern bytes (content-length)
  /stream?n=N    200 with N pattern bytes, no content-length
  /trailers      200, a body, then trailers (x-checksum, grpc-status style)
  /slow?ms=M     waits M ms, then 200 "slow"
  /bad-header    a response with a connection-specific field (malformed)
  /reset         RST_STREAM INTERNAL_ERROR before any response
  /refuse-once   REFUSED_STREAM the first time, 200 after
  /goaway        (held) see `goaway_after`

Modes:
  goaway_after=K  on the first connection, once K streams are open, GOAWAY
                  with last_stream_id = the first of them; only that one is
                  answered there (the others must come again elsewhere)
  deaf_after_first=True  a connection stops reading (and answering PINGs)
                  after its first response
"""
import hashlib
import json
import select
import socket
import threading
import time
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from egwtest import pattern


class StreamState:
    def __init__(self, sid, headers):
        self.id = sid
        self.headers = headers
        self.body = hashlib.sha256()
        self.body_len = 0
        self.trailers = []
        self.ended = False
        self.reset = None

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None


class H2Backend:
    def __init__(self, goaway_after=0, deaf_after_first=False, max_streams=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.goaway_after = goaway_after
        self.deaf_after_first = deaf_after_first
        self.max_streams = max_streams
        self.lock = threading.Lock()
        self.requests = []      # StreamState, in the order their request ended
        self.resets = []        # (connection index, stream id, error code) the client sent
        self.connections = 0
        self.max_open = 0       # most streams open at once on one connection
        self.refused = set()
        self.pings = 0
        # What each connection's client granted, seen at its first request:
        # (SETTINGS_INITIAL_WINDOW_SIZE, connection window).
        self.client_windows = []
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    @property
    def address(self):
        h, p = self.sock.getsockname()
        return f"{h}:{p}"

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                index = self.connections
            t = threading.Thread(target=self._serve, args=(conn, index), daemon=True)
            t.start()

    def _serve(self, conn, index):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=True)
        c = h2.connection.H2Connection(config=cfg)
        settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
        if self.max_streams:
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = self.max_streams
        c.initiate_connection()
        c.update_settings(settings)
        c.increment_flow_control_window(16 << 20)
        streams = {}
        outgoing = {}   # sid -> [bytes remaining, trailers or None, end]
        held = []       # goaway mode: streams waiting
        timers = []     # (due, sid)
        goaway_done = False
        served = 0
        deaf = False
        conn.settimeout(None)

        def flush():
            data = c.data_to_send()
            if data:
                conn.sendall(data)

        def respond(sid, status, body=b"", headers=(), trailers=None, length=True):
            hs = [(":status", str(status))]
            if length:
                hs.append(("content-length", str(len(body))))
            hs.extend(headers)
            end = not body and trailers is None
            c.send_headers(sid, hs, end_stream=end)
            if not end:
                outgoing[sid] = [body, trailers]

        def pump():
            for sid in list(outgoing):
                body, trailers = outgoing[sid]
                try:
                    while body:
                        room = min(c.local_flow_control_window(sid), c.max_outbound_frame_size)
                        if room <= 0:
                            break
                        chunk, body = body[:room], body[room:]
                        c.send_data(sid, chunk, end_stream=(not body and trailers is None))
                    if not body and trailers is not None:
                        c.send_headers(sid, trailers, end_stream=True)
                except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                    outgoing.pop(sid, None)
                    continue
                if body:
                    outgoing[sid][0] = body
                else:
                    outgoing.pop(sid, None)

        def handle(st):
            nonlocal goaway_done, served
            path = st.header(":path") or "/"
            u = urllib.parse.urlsplit(path)
            q = urllib.parse.parse_qs(u.query)
            with self.lock:
                self.requests.append(st)
            if u.path == "/echo":
                info = {"method": st.header(":method"), "path": path,
                        "authority": st.header(":authority"), "scheme": st.header(":scheme"),
                        "headers": st.headers, "trailers": st.trailers,
                        "body_len": st.body_len, "body_sha": st.body.hexdigest()}
                respond(st.id, 200, json.dumps(info).encode(),
                        headers=[("content-type", "application/json")])
            elif u.path == "/bytes":
                n = int(q.get("n", ["1000"])[0])
                respond(st.id, 200, pattern(3, 0, n))
            elif u.path == "/stream":
                n = int(q.get("n", ["1000"])[0])
                respond(st.id, 200, pattern(3, 0, n), length=False)
            elif u.path == "/trailers":
                respond(st.id, 200, b"body-with-trailers", length=False,
                        trailers=[("x-checksum", "abc123"), ("x-status", "0")])
            elif u.path == "/slow":
                timers.append((time.monotonic() + int(q.get("ms", ["500"])[0]) / 1000, st.id))
                return
            elif u.path == "/bad-header":
                # python-h2 refuses to send it itself: validation off for this one.
                c.config.validate_outbound_headers = False
                c.config.normalize_outbound_headers = False
                c.send_headers(st.id, [(":status", "200"), ("connection", "close"),
                                       ("content-length", "0")], end_stream=True)
                c.config.validate_outbound_headers = True
                c.config.normalize_outbound_headers = True
            elif u.path == "/reset":
                c.reset_stream(st.id, error_code=2)
            elif u.path == "/refuse-once":
                with self.lock:
                    first = path not in self.refused
                    self.refused.add(path)
                if first:
                    c.reset_stream(st.id, error_code=7)
                else:
                    respond(st.id, 200, b"second time")
            else:
                respond(st.id, 200, b"ok " + path.encode())
            served += 1

        try:
            flush()
            buf_open = {}
            while not self.stopping:
                now = time.monotonic()
                for due, sid in list(timers):
                    if due <= now:
                        timers.remove((due, sid))
                        if sid in streams:
                            respond(sid, 200, b"slow")
                pump()
                flush()
                if deaf:
                    time.sleep(0.05)
                    continue
                wait = 0.05 if timers or outgoing else 0.5
                r, _, _ = select.select([conn], [], [], wait)
                if not r:
                    continue
                data = conn.recv(1 << 16)
                if not data:
                    break
                if goaway_done:
                    # After our GOAWAY: the client's FIN is awaited, its bytes dropped.
                    conn.shutdown(socket.SHUT_WR)
                    continue
                try:
                    events = c.receive_data(data)
                except h2.exceptions.ProtocolError:
                    flush()
                    break
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        if not streams:
                            with self.lock:
                                self.client_windows.append(
                                    (c.remote_settings.initial_window_size,
                                     c.outbound_flow_control_window))
                        streams[ev.stream_id] = StreamState(ev.stream_id, list(ev.headers))
                        buf_open[ev.stream_id] = True
                        with self.lock:
                            self.max_open = max(self.max_open, len(buf_open))
                    elif isinstance(ev, h2.events.DataReceived):
                        st = streams.get(ev.stream_id)
                        if st:
                            st.body.update(ev.data)
                            st.body_len += len(ev.data)
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        streams[ev.stream_id].trailers = list(ev.headers)
                    elif isinstance(ev, h2.events.StreamEnded):
                        st = streams[ev.stream_id]
                        st.ended = True
                        if self.goaway_after and index == 1 and not goaway_done:
                            held.append(st)
                            if len(held) >= self.goaway_after:
                                # The first is answered; then GOAWAY names it
                                # the last processed, and nothing more is read.
                                goaway_done = True
                                first = held[0]
                                handle(first)
                                pump()
                                c.close_connection(error_code=0, last_stream_id=first.id)
                                flush()
                                break
                            continue
                        handle(st)
                    elif isinstance(ev, h2.events.StreamReset):
                        buf_open.pop(ev.stream_id, None)
                        outgoing.pop(ev.stream_id, None)
                        with self.lock:
                            self.resets.append((index, ev.stream_id, ev.error_code))
                    elif isinstance(ev, h2.events.PingReceived):
                        with self.lock:
                            self.pings += 1
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        pass
                pump()
                flush()
                for sid in [s for s in buf_open if s not in outgoing and streams[s].ended]:
                    buf_open.pop(sid, None)
                if self.deaf_after_first and served >= 1 and not outgoing:
                    deaf = True
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
