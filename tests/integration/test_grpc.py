"""gRPC end to end: python3-grpcio client -> the gateway (HTTP/2 prior
knowledge) -> a cluster with protocol = "h2" -> a python3-grpcio server
(generic handlers, raw bytes: no generated code). Unary calls, errors as
Trailers-Only responses, trailing metadata, server and bidirectional
streaming of 1,000 messages, deadlines (grpc-timeout) and cancels that
reach the server."""
import threading
import time
from concurrent import futures

import pytest

from egwtest import Gateway, wait_until
from test_http import http_config

grpc = pytest.importorskip("grpc")


pytestmark = pytest.mark.usefixtures("clean_exit")


class Service:
    def __init__(self):
        self.deadlines = []   # time_remaining() the server saw on Slow
        self.ended = []       # calls whose termination callback ran (name)
        self.metadata = []
        self.lock = threading.Lock()

    def echo(self, req, ctx):
        with self.lock:
            self.metadata.append(dict(ctx.invocation_metadata()))
        ctx.set_trailing_metadata((("x-trace", "t-" + req.decode()[:8]),))
        return req

    def fail(self, req, ctx):
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input: " + req.decode())

    def count(self, req, ctx):
        n = int(req.decode())
        for i in range(n):
            yield f"msg-{i}".encode()

    def bidi(self, it, ctx):
        for m in it:
            yield m[::-1]

    def slow(self, req, ctx):
        with self.lock:
            self.deadlines.append(ctx.time_remaining())
        self._watch(ctx, "slow")
        end = time.monotonic() + 10
        while ctx.is_active() and time.monotonic() < end:
            time.sleep(0.01)
        return b"late"

    def forever(self, req, ctx):
        self._watch(ctx, "forever")
        i = 0
        end = time.monotonic() + 10
        while ctx.is_active() and time.monotonic() < end:
            yield f"tick-{i}".encode()
            i += 1
            time.sleep(0.01)

    def _watch(self, ctx, name):
        def done():
            with self.lock:
                self.ended.append(name)
        ctx.add_callback(done)


@pytest.fixture
def service():
    svc = Service()
    handler = grpc.method_handlers_generic_handler("egw.Test", {
        "Echo": grpc.unary_unary_rpc_method_handler(svc.echo),
        "Fail": grpc.unary_unary_rpc_method_handler(svc.fail),
        "Count": grpc.unary_stream_rpc_method_handler(svc.count),
        "Bidi": grpc.stream_stream_rpc_method_handler(svc.bidi),
        "Slow": grpc.unary_unary_rpc_method_handler(svc.slow),
        "Forever": grpc.unary_stream_rpc_method_handler(svc.forever),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    svc.address = f"127.0.0.1:{port}"
    yield svc
    server.stop(grace=None)


class Addr:
    def __init__(self, address):
        self.address = address


@pytest.fixture
def channel(gateways, service):
    g = Gateway(http_config([Addr(service.address)], cluster_extra='protocol = "h2"'))
    gateways.append(g)
    host, port = g.address("web")
    ch = grpc.insecure_channel(f"{host}:{port}", options=[("grpc.enable_http_proxy", 0)])
    yield ch
    ch.close()


def test_unary_ok_with_trailing_metadata(channel, service):
    echo = channel.unary_unary("/egw.Test/Echo")
    resp, call = echo.with_call(b"hello", metadata=(("x-client", "py"),), timeout=10)
    assert resp == b"hello"
    assert call.code() == grpc.StatusCode.OK
    assert ("x-trace", "t-hello") in call.trailing_metadata()
    md = service.metadata[-1]
    assert md["x-client"] == "py"
    assert "x-forwarded-for" in md
    # Many calls on the channel (one HTTP/2 connection), in parallel.
    futs = [echo.future(f"m{i}".encode(), timeout=10) for i in range(200)]
    assert [f.result() for f in futs] == [f"m{i}".encode() for i in range(200)]


def test_unary_error_is_a_trailers_only_response(channel):
    fail = channel.unary_unary("/egw.Test/Fail")
    with pytest.raises(grpc.RpcError) as e:
        fail(b"xyz", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "bad input: xyz"
    # An unknown method: the server's own UNIMPLEMENTED, also Trailers-Only.
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/egw.Test/Nope")(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_server_streaming_1000_messages(channel):
    count = channel.unary_stream("/egw.Test/Count")
    got = list(count(b"1000", timeout=20))
    assert got == [f"msg-{i}".encode() for i in range(1000)]


def test_bidirectional_streaming_1000_messages(channel):
    bidi = channel.stream_stream("/egw.Test/Bidi")
    msgs = [f"message-{i:04d}".encode() for i in range(1000)]
    got = list(bidi(iter(msgs), timeout=20))
    assert got == [m[::-1] for m in msgs]


def test_deadline_propagates_and_the_server_sees_the_end(channel, service):
    slow = channel.unary_unary("/egw.Test/Slow")
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        slow(b"", timeout=0.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 3
    # grpc-timeout went through: the server's deadline is the client's.
    assert service.deadlines and 0 < service.deadlines[0] <= 0.6, service.deadlines
    wait_until(lambda: "slow" in service.ended, timeout=5, what="the server saw the call end")


def test_cancelled_call_reaches_the_server(channel, service):
    forever = channel.unary_stream("/egw.Test/Forever")
    call = forever(b"", timeout=30)
    got = [next(call) for _ in range(5)]
    assert got == [f"tick-{i}".encode() for i in range(5)]
    call.cancel()
    wait_until(lambda: "forever" in service.ended, timeout=5, what="the server saw the cancel")
    # The channel (and the gateway's upstream connection) still serve.
    assert channel.unary_unary("/egw.Test/Echo")(b"after", timeout=10) == b"after"
