"""expressgateway-load against egw-test-backend (and wrk): closed-loop
throughput beside wrk's, coordinated-omission correction around a backend
stall, the JSON and HDR outputs, the rate sweep, error accounting and
argument checking. Loopback only, port 0, every run bounded; about a minute
in all."""
import math
import os
import re
import tempfile

import pytest

from loadtest import (BACKEND, BUILD_TYPE, LOAD, OPTIMISED, WRK, Backend, free_port, median,
                      parse_hdr, run_load, run_load_json, run_wrk)

pytestmark = pytest.mark.skipif(
    not (os.path.exists(LOAD) and os.path.exists(BACKEND)),
    reason="expressgateway-load and egw-test-backend are not built")

needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk is not installed")
optimised_only = pytest.mark.skipif(
    not OPTIMISED, reason=f"throughput is compared only in optimised builds (this is {BUILD_TYPE})")


def _compare_with_wrk(backend_args, seconds):
    """Three interleaved closed-loop runs of wrk and of expressgateway-load
    (16 connections, one thread each) against one backend; returns the two
    medians after checking every count against what the backend served."""
    rates = {"wrk": [], "load": []}
    counted = 0
    with Backend(*backend_args) as b:
        for _ in range(3):
            wrk = run_wrk(b.url(), 16, seconds)
            rates["wrk"].append(wrk["rate"])
            counted += wrk["requests"]
            out, _ = run_load_json("--url", b.url(), "--closed-loop", "-c", 16,
                                   "--duration", f"{seconds}s")
            assert out["errors"] == 0 and out["requests"] > 0, out
            rates["load"].append(out["achieved_rate"])
            counted += out["requests"]
        served = b.stop()
    # Each tool counted what the backend answered, except that wrk abandons
    # the (at most 16) requests in flight when its time is up.
    assert counted <= served <= counted + 3 * 16, (counted, served)
    w, ours = median(rates["wrk"]), median(rates["load"])
    print(f"backend {backend_args}: wrk {rates['wrk']} median {w:.0f} req/s; expressgateway-load "
          f"{rates['load']} median {ours:.0f} req/s; ratio {ours / w:.3f}")
    return w, ours


@needs_wrk
@optimised_only
def test_closed_loop_throughput_matches_wrk_when_the_backend_is_the_limit():
    # 40 us of work per request caps the backend near 25k req/s, below what
    # either client can drive even on this noisy box: both must then report
    # the backend's capacity.
    w, ours = _compare_with_wrk(("--work-us", 40), 3)
    assert abs(ours / w - 1) <= 0.10


@needs_wrk
@optimised_only
def test_closed_loop_throughput_is_not_below_wrk_when_the_client_is_the_limit():
    # A backend answering at full speed: now the client's own cost per
    # request decides. Batched io_uring submission makes ours the cheaper of
    # the two, so only "not slower" holds (and the counts match the backend).
    w, ours = _compare_with_wrk(("--body-size", 100), 2)
    assert ours >= 0.9 * w


def test_request_count_matches_what_the_backend_served():
    # Closed loop without warm-up: every request sent is measured (those in
    # flight at the end are waited for), so the backend answered exactly as
    # many requests as the report counts; with POST bodies, Poisson arrivals
    # and a new connection per request the same holds.
    with Backend() as b:
        out, _ = run_load_json("--url", b.url("/a?b=c"), "--closed-loop", "-c", 8,
                               "--duration", "1s")
        assert b.stop() == out["requests"] > 0
    with Backend() as b:
        out, _ = run_load_json("--url", b.url(), "--rate", 2000, "--poisson", "-c", 8,
                               "--duration", "1s", "--method", "POST", "--body-size", 3000,
                               "-H", "X-Test: 1", "--new-connection-per-request")
        assert out["errors"] == 0, out
        assert b.stop() == out["requests"] == out["phases_us"]["connect"]["count"]
        # Poisson: the count is random around rate x duration.
        assert 1700 <= out["requests"] <= 2300, out


@needs_wrk
def test_open_loop_shows_a_one_second_stall_that_closed_loop_samples_hide():
    stall = ("--stall-at-ms", 1000, "--stall-ms", 1000)
    # Open loop at 2000 req/s for 3 s: the 2000 requests due during the stall
    # wait up to 1 s each, and their latency counts from their intended time.
    with Backend(*stall) as b:
        out, p = run_load_json("--url", b.url(), "--rate", 2000, "-c", 16, "--duration", "3s")
        b.stop()
    lat = out["latency_us"]
    print(f"open loop: p99 {lat['p99']} us, p99.9 {lat['p999']} us, max {lat['max']} us")
    assert lat["p999"] >= 500_000 and lat["p99"] >= 500_000, p.stdout
    assert lat["max"] >= 900_000, p.stdout
    assert out["requests"] == 6000 and out["errors"] == 0, p.stdout
    assert abs(out["achieved_rate"] - 2000) <= 200, p.stdout

    # Closed loop, 4 connections, 4 s: only the 4 requests in flight when the
    # stall began are late, out of ~10^5; a closed loop records each of them
    # once, so they sit far above p99.9 (which is all they can move).
    with Backend(*stall) as b:
        closed, p = run_load_json("--url", b.url(), "--closed-loop", "-c", 4, "--duration", "4s")
        b.stop()
    lat = closed["latency_us"]
    print(f"closed loop: {closed['requests']} requests, p99.9 {lat['p999']} us, "
          f"max {lat['max']} us")
    assert lat["max"] >= 500_000, p.stdout  # the stall did happen in this run
    assert 4 / closed["requests"] < 0.0002, p.stdout
    assert lat["p999"] < 100_000, p.stdout

    # wrk, the same way. Its samples are the closed loop's, but wrk 4.1
    # corrects its histogram after the run (stats_correct() adds synthetic
    # samples at the mean per-connection interval below every slow one), so
    # the p99.9 it prints shows the stall as well. Printed for the record;
    # asserted: the stall hit its run and touched only its 4 in-flight
    # requests.
    with Backend(*stall) as b:
        wrk = run_wrk(b.url(), 4, 4)
        b.stop()
    print(f"wrk: {wrk['requests']} requests, p99.9 {wrk['p999_us']} us (after its own "
          f"correction), max {wrk['max_us']} us")
    assert wrk["max_us"] >= 500_000, wrk["text"]
    assert 4 / wrk["requests"] < 0.0002, wrk["text"]


def test_json_and_hdr_outputs():
    with Backend() as b, tempfile.TemporaryDirectory() as d:
        hdr_path = os.path.join(d, "total.hdr")
        out, p = run_load_json("--url", b.url(), "--rate", 1000, "-c", 8, "--duration", "1s",
                               "--warmup", "200ms", "--hdr", hdr_path)
        with open(hdr_path) as f:
            hdr = f.read()
    # Constant arrivals: exactly rate x duration requests are intended in
    # the window (warm-up requests are sent but not counted).
    assert out["requests"] == 1000 and out["sent"] == 1000, out
    assert out["errors"] == 0 and out["status"]["2xx"] == 1000, out
    assert abs(out["achieved_rate"] - 1000) <= 50, out
    assert out["target_rate"] == 1000 and out["mode"] == "open-loop"
    lat = out["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat
    assert lat["count"] == out["requests"]
    for phase in ("connect", "wait", "ttfb", "total", "generator_lag"):
        assert phase in out["phases_us"], out["phases_us"].keys()
    assert out["phases_us"]["connect"]["count"] == 8  # keep-alive: opened once at start
    assert out["phases_us"]["ttfb"]["count"] == 1000
    assert set(out["error_kinds"]) >= {"connect_refused", "connect_timeout", "reset", "timeout",
                                       "bad_response", "status_4xx", "status_5xx", "unfinished"}
    assert sum(out["error_kinds"].values()) == out["errors"] == 0
    # The same numbers reach stdout.
    assert "p99.9" in p.stdout and "Errors: none" in p.stdout

    rows, footer = parse_hdr(hdr)
    assert len(rows) > 10
    assert rows[-1][1] == 1.0 and rows[-1][2] == out["requests"]
    assert footer["Total count"] == out["requests"]
    assert all(a[2] <= b[2] and a[0] <= b[0] for a, b in zip(rows, rows[1:]))
    # Values are milliseconds: the max row agrees with latency_us.max (the
    # HDR rows print bucket tops, within 1%).
    assert math.isclose(footer["Max"], lat["max"] / 1000, rel_tol=0.01, abs_tol=0.002)


def test_sweep_finds_the_highest_rate_meeting_the_objective():
    with Backend() as b:
        out, p = run_load_json("--url", b.url(), "--sweep", "p99<=100ms", "--rate", 500,
                               "--sweep-max", 4000, "--duration", "500ms", "-c", 8)
    steps = out["sweep"]["steps"]
    assert [s["target_rate"] for s in steps] == [500, 1000, 2000, 4000], p.stdout
    assert all(s["met"] for s in steps), p.stdout
    assert out["sweep"]["best_rate"] == 4000 and out["target_rate"] == 4000
    assert "highest rate meeting p99<=100ms: 4000 req/s" in p.stdout
    assert len(re.findall(r"^sweep step \d+: target", p.stdout, re.M)) == 4

    # An objective nothing meets: the sweep halves down and says so (exit 1).
    with Backend() as b:
        out, p = run_load_json("--url", b.url(), "--sweep", "p50<1us", "--rate", 64,
                               "--duration", "200ms", "-c", 2, expect_rc=1)
    assert out["sweep"]["best_rate"] is None
    assert [s["target_rate"] for s in out["sweep"]["steps"]] == [64, 32, 16, 8, 4, 2, 1]
    assert "no rate met p50<1us" in p.stdout


def test_connect_errors_are_counted_and_exit_1():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    out, p = run_load_json("--url", url, "--rate", 200, "--duration", "500ms", "-c", 4,
                           expect_rc=1)
    assert out["requests"] == 0
    # Every request intended in the window failed to connect: none vanished.
    assert out["error_kinds"]["connect_refused"] == out["errors"] == 100, out
    assert out["setup_failures"] == 4
    assert "connect_refused 100" in p.stdout
    # Closed loop: failed connects back off instead of spinning.
    out, p = run_load_json("--url", url, "--closed-loop", "--duration", "300ms", "-c", 2,
                           expect_rc=1)
    assert 0 < out["error_kinds"]["connect_refused"] <= 2 * 40, out


class _Addr:
    def __init__(self, b):
        self.address = f"{b.host}:{b.port}"


def test_http2_through_the_gateway_counts_every_request():
    """--h2: streams multiplexed over few connections, the same accounting:
    every measured request is one response, and the backend behind the
    gateway served exactly as many (closed loop without warm-up). A gateway
    that sends GOAWAY every 100 streams costs nothing: the generator moves
    to a new connection."""
    from egwtest import Gateway
    from test_http import http_config
    with Backend() as b:
        g = Gateway(http_config([_Addr(b)], listener_extra="http2_max_requests_per_connection = 100"))
        try:
            host, port = g.address("web")
            url = f"http://{host}:{port}/x"
            out, p = run_load_json("--url", url, "--h2", "--streams", 8, "-c", 2, "--rate", 2000,
                                   "--duration", "1s")
            assert out["protocol"] == "h2" and out["streams_per_connection"] == 8, out
            assert out["errors"] == 0 and out["requests"] == 2000, p.stdout
            assert "HTTP/2 connections (8 streams each): 2" in p.stdout, p.stdout
            closed, p = run_load_json("--url", url, "--h2", "--streams", 4, "-c", 2,
                                      "--closed-loop", "--duration", "500ms", "--method", "POST",
                                      "--body-size", 3000)
            assert closed["errors"] == 0 and closed["requests"] > 100, p.stdout
        finally:
            g.stop()
        assert b.stop() == out["requests"] + closed["requests"]


def test_http2_over_tls_negotiates_h2():
    from egwtest import Gateway
    from test_http import http_config
    from tlstest import Pki, cert_table
    pki = Pki()
    leaf = pki.make_leaf("srv", "localhost", ["localhost"])
    with Backend() as b:
        g = Gateway(http_config([_Addr(b)], listener_extra=f"[listener.tls]\ncertificates = "
                                                           f"{cert_table([leaf])}\n"))
        try:
            host, port = g.address("web")
            out, p = run_load_json("--url", f"https://localhost:{port}/", "--cacert",
                                   pki.ca["cert"], "--h2", "-c", 2, "--rate", 500, "--duration",
                                   "1s")
            assert out["errors"] == 0 and out["requests"] == 500, p.stdout
            assert out["phases_us"]["tls_handshake"]["count"] == 2, out
        finally:
            g.stop()
            b.stop()
            pki.cleanup()


def test_new_connections_resume_the_tls_session_unless_told_not_to():
    """Over HTTP/1.1 (a connection per request) and HTTP/2 (a new connection
    after each GOAWAY), every connection after the first whole response
    offers the session saved from it; --no-tls-resume offers none."""
    from egwtest import Gateway
    from test_http import http_config
    from tlstest import Pki, cert_table
    pki = Pki()
    leaf = pki.make_leaf("srv", "localhost", ["localhost"])
    with Backend() as b:
        g = Gateway(http_config([_Addr(b)], listener_extra="http2_max_requests_per_connection = 20\n"
                                f"[listener.tls]\ncertificates = {cert_table([leaf])}\n"))
        try:
            host, port = g.address("web")
            url = f"https://localhost:{port}/"
            common = ["--url", url, "--cacert", pki.ca["cert"], "-c", 1, "--rate", 200,
                      "--duration", "500ms"]
            h1, p = run_load_json(*common, "--new-connection-per-request")
            assert h1["errors"] == 0 and h1["requests"] == 100, p.stdout
            handshakes = h1["phases_us"]["tls_handshake"]["count"]
            assert handshakes >= 99, h1
            assert handshakes - 2 <= h1["tls_resumed"] < handshakes, h1
            h2, p = run_load_json(*common, "--h2")
            assert h2["errors"] == 0 and h2["requests"] == 100, p.stdout
            handshakes = h2["phases_us"]["tls_handshake"]["count"]
            assert handshakes >= 5, h2  # 100 requests, GOAWAY after each 20
            assert handshakes - 2 <= h2["tls_resumed"] < handshakes, h2
            off, p = run_load_json(*common, "--new-connection-per-request", "--no-tls-resume")
            assert off["errors"] == 0 and off["phases_us"]["tls_handshake"]["count"] >= 99, off
            assert off["tls_resumed"] == 0, off
        finally:
            g.stop()
            b.stop()
            pki.cleanup()


@pytest.mark.parametrize("args,message", [
    ([], "--url is required"),
    (["--url", "http://127.0.0.1:1/"], "needs --rate"),
    (["--url", "ftp://127.0.0.1/", "--rate", "1"], "expected http[s]://"),
    (["--url", "https://127.0.0.1/", "--rate", "1"], "needs --cacert"),
    (["--url", "http://127.0.0.1:1/", "--rate", "1", "-k"], "for https targets"),
    (["--url", "http://127.0.0.1:1/", "--rate", "-5"], "--rate"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--duration", "10x"], "--duration"),
    (["--url", "http://127.0.0.1:1/", "--closed-loop", "--rate", "10"], "no meaning"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--poisson", "--closed-loop"], "exclude"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "-H", "NoColon"], "Name: value"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "-H", "Bad Name: x"], "token"),
    (["--url", "http://127.0.0.1:1/", "--sweep", "p99<=1"], "unit"),
    (["--url", "http://127.0.0.1:1/", "--sweep", "q99<=1ms"], "PERCENTILE"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "-c", "1", "-t", "2"], "at least --threads"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--bogus"], "bogus"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--streams", "4"], "--streams is for --h2"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--h2", "--new-connection-per-request"],
     "not with --h2"),
    (["--url", "http://127.0.0.1:1/", "--rate", "10", "--h2", "--streams", "0"], "--streams"),
])
def test_argument_errors_exit_2(args, message):
    p = run_load(*args, timeout=10)
    assert p.returncode == 2, p
    assert message in p.stderr, p.stderr
