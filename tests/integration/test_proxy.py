"""Issue point 3: proxying. The client gets the master's response byte for
byte (apart from hop-by-hop headers), streamed; request bodies reach every
selected backend; keep-alive on both sides while shadowing; pipelining;
HTTP/1.0 clients."""

import hashlib
import http.client
import shutil
import subprocess
import threading
import time

import pytest

import backends
import rawhttp
from checks import assert_relayed, only_request, split_raw

BODY_METHODS = {"shadow_methods": ["GET", "HEAD", "POST", "PUT"]}


@pytest.fixture
def body_proxy(make_backend, start_kagami):
    """Like `proxy`, but POST and PUT are shadowed too."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb], options=BODY_METHODS)
    return production, newdb, k


# --- responses reach the client unchanged -----------------------------------
@pytest.mark.parametrize("path", ["/text/300", "/binary", "/binary/70000",
                                  "/status/404", "/status/500", "/diff"])
def test_master_response_is_relayed_byte_for_byte(proxy, path):
    resp = proxy.kagami.get(path)
    rec = only_request(proxy.production, path)
    assert_relayed(resp, rec.response)
    # The shadow got the same request, but its answer never reaches us.
    proxy.newdb.wait_for_requests(1, path=path)


def test_unusual_headers_and_reason_phrase_are_kept(proxy):
    resp = proxy.kagami.get("/headers")
    rec = only_request(proxy.production, "/headers")
    assert resp.status_line == b"HTTP/1.1 200 Fine Thanks"
    assert resp.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    names = [k for k, _ in resp.headers]
    for spelled in ("X-Odd-Case", "x-all-lower", "X-ALL-UPPER", "X-Repeat",
                    "x-repeat"):
        assert spelled in names
    assert resp.header("X-Tab") == "a\tb"
    assert resp.header("X-Spaces") == "a,  b,   c"
    assert resp.header("X-Empty") == ""
    assert_relayed(resp, rec.response)


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body(proxy, code):
    with proxy.kagami.connect() as c:
        resp = c.request("GET", "/status/%d" % code)
        assert resp.status == code and resp.body == b""
        assert resp.header("Content-Length") in (None, "0")
        assert not resp.chunked
        # The connection is still usable: nothing stray was sent.
        assert c.request("GET", "/text/2").body == backends.text_body(2)


def test_head_gets_headers_only_and_connection_stays_usable(proxy):
    with proxy.kagami.connect() as c:
        resp = c.request("HEAD", "/text/40")
        assert resp.status == 200
        assert resp.header("Content-Length") == str(len(
            backends.text_body(40)))
        resp2 = c.request("GET", "/text/3")
        assert resp2.body == backends.text_body(3)
    assert only_request(proxy.production, "/text/40").method == "HEAD"


def test_head_of_a_chunked_resource(proxy):
    """The master answers HEAD with Transfer-Encoding: chunked and no body;
    the proxy must not wait for one."""
    with proxy.kagami.connect(timeout=3) as c:
        resp = c.request("HEAD", "/chunked")
        assert resp.status == 200 and resp.body == b""
        assert c.request("GET", "/text/2").body == backends.text_body(2)


def test_chunked_response_reaches_client_intact(proxy):
    resp = proxy.kagami.get("/chunked")
    assert resp.status == 200
    assert resp.body == backends.chunked_body()
    rec = only_request(proxy.production, "/chunked")
    _, sent_headers, _ = split_raw(rec.response)
    assert rawhttp.end_to_end(resp.headers) == \
        rawhttp.end_to_end(sent_headers)


def test_close_delimited_response_reaches_client_intact(proxy):
    with proxy.kagami.connect() as c:
        resp = c.request("GET", "/eof")
        assert resp.status == 200
        assert resp.body == backends.text_body(50)


def test_big_response_is_complete(proxy):
    n = 8 * 1024 * 1024 + 123
    resp = proxy.kagami.get("/big/%d" % n)
    assert resp.status == 200
    assert len(resp.body) == n
    assert hashlib.sha256(resp.body).digest() == \
        hashlib.sha256(backends.big_body(n)).digest()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_stops_reading_pauses_the_master(proxy):
    # A client that reads nothing while a 64 MiB response comes must not
    # make kagami hold the response: it stops reading the master above a
    # high-water mark (the big pieces written straight from the read buffer
    # count too). Only the capped captures for comparing (8 MiB each) stay.
    n = 64 * 1024 * 1024
    k = proxy.kagami
    pid = k.proc.pid
    k.get("/text/1")
    before = _rss_kib(pid)
    grown = 0
    with k.connect() as c:
        c.send(rawhttp.build_request("GET", "/big/%d" % n))
        # The backend needs about a second to make the body, then sends it
        # as fast as kagami reads.
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline and grown < 40 * 1024:
            time.sleep(0.25)
            grown = max(grown, _rss_kib(pid) - before)
        h = hashlib.sha256()
        got = 0
        head = c.reader.until(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n", 1)[0]
        while got < n:
            piece = c.reader.exact(min(1 << 20, n - got))
            h.update(piece)
            got += len(piece)
    assert h.digest() == hashlib.sha256(backends.big_body(n)).digest()
    assert grown < 40 * 1024, "kagami grew by %d KiB for a client reading nothing" % grown


def test_response_is_streamed_as_it_arrives(proxy):
    # The master sends the head and the first piece at once, then four more
    # pieces 300 ms apart: the client must see the start long before the end.
    with proxy.kagami.connect() as c:
        t0 = time.monotonic()
        c.send(rawhttp.build_request("GET", "/drip/5/300"))
        c.reader.until(b"\r\n\r\n")
        c.reader.exact(1)
        first = time.monotonic() - t0
    assert first < 0.8, "first body byte after %.2fs" % first


# --- request bodies ---------------------------------------------------------
def test_content_length_body_reaches_master_and_shadow(body_proxy):
    production, newdb, k = body_proxy
    body = bytes(range(256)) * 40 + b"\r\n\r\nnot a request\r\n"
    resp = k.request("POST", "/echo", [("Content-Type", "x/y")], body)
    assert resp.status == 200
    assert only_request(production, "/echo").body == body
    assert newdb.wait_for_requests(1, "/echo")[0].body == body


def test_chunked_body_reaches_master_and_shadow_dechunked(body_proxy):
    production, newdb, k = body_proxy
    pieces = [b"first,", b"x" * 5000, b"\r\n0\r\n\r\n", b"last"]
    raw = rawhttp.build_request(
        "PUT", "/echo", [("Transfer-Encoding", "chunked")],
        rawhttp.chunk_encode(pieces))
    with k.connect() as c:
        c.send(raw)
        resp = c.read_response()
    assert resp.status == 200
    expected = b"".join(pieces)
    assert only_request(production, "/echo").body == expected
    assert newdb.wait_for_requests(1, "/echo")[0].body == expected


def test_chunked_body_with_extensions_and_trailer(body_proxy):
    production, newdb, k = body_proxy
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
           b"\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n"
           b"X-Trailer: t\r\n\r\n")
    with k.connect() as c:
        c.send(raw)
        assert c.read_response().status == 200
        assert c.request("GET", "/text/1").status == 200  # framing kept
    assert only_request(production, "/echo").body == b"hello world"
    assert newdb.wait_for_requests(1, "/echo")[0].body == b"hello world"


def test_chunked_body_sent_slowly_in_pieces(body_proxy):
    production, newdb, k = body_proxy
    pieces = [b"a" * 100, b"b" * 200, b"c" * 300]
    raw = rawhttp.build_request("POST", "/echo",
                                [("Transfer-Encoding", "chunked")],
                                rawhttp.chunk_encode(pieces))
    with k.connect() as c:
        for i in range(0, len(raw), 97):
            c.send(raw[i:i + 97])
            time.sleep(0.01)
        resp = c.read_response()
    assert resp.status == 200
    assert only_request(production, "/echo").body == b"".join(pieces)
    assert newdb.wait_for_requests(1, "/echo")[0].body == b"".join(pieces)


def test_large_request_body_reaches_both(body_proxy):
    production, newdb, k = body_proxy
    body = backends.big_body(3 * 1024 * 1024)
    resp = k.request("POST", "/echo", body=body)
    assert resp.status == 200
    assert only_request(production, "/echo").body == body
    assert newdb.wait_for_requests(1, "/echo")[0].body == body


def test_request_headers_keep_order_and_spelling(proxy):
    sent = [("X-Custom-Case", "Value"), ("x-lower", "v"), ("X-Repeat", "1"),
            ("X-Repeat", "2"), ("X-UPPER", "A  B")]
    proxy.kagami.request("GET", "/echo", sent)
    for b in (proxy.production, proxy.newdb):
        rec = b.wait_for_requests(1, "/echo")[0]
        names = {k for k, _ in sent}
        assert [(k, v) for k, v in rec.headers if k in names] == sent, b.name


def test_hop_by_hop_request_headers_are_not_forwarded(proxy):
    """RFC 9110 7.6.1: a proxy removes Connection, Keep-Alive and the
    fields Connection names before forwarding."""
    proxy.kagami.request("GET", "/echo", [
        ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"),
        ("Keep-Alive", "timeout=5"), ("X-End", "kept")])
    for b in (proxy.production, proxy.newdb):
        rec = b.wait_for_requests(1, "/echo")[0]
        assert rec.header("X-End") == "kept", b.name
        assert rec.header("X-Hop") is None, b.name
        assert rec.header("Keep-Alive") is None, b.name


def test_expect_100_continue(body_proxy):
    """A client that sends "Expect: 100-continue" waits for an interim 100
    before sending its body (curl does so for bodies over 1 KiB, giving up
    after 1 s); the proxy must relay or produce the 100."""
    production, newdb, k = body_proxy
    body = b"e" * 4000
    head = rawhttp.build_request("POST", "/echo", [
        ("Expect", "100-continue"), ("Content-Length", str(len(body)))])
    with k.connect(timeout=0.9) as c:
        c.send(head)
        interim = c.reader.until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        c.sock.settimeout(5)
        c.send(body)
        resp = c.read_response()
    assert resp.status == 200
    assert only_request(production, "/echo").body == body
    assert newdb.wait_for_requests(1, "/echo")[0].body == body


def test_request_target_with_query_is_forwarded_as_is(proxy):
    target = "/echo?a=1&b=%20x&c=%2F"
    proxy.kagami.get(target)
    assert proxy.production.received()[0].target == target
    assert proxy.newdb.wait_for_requests(1)[0].target == target


# --- keep-alive and pipelining ------------------------------------------------
def test_keep_alive_on_both_sides_while_shadowing(proxy):
    """Each request is finished (diff-log line written) before the next:
    one client connection, and one connection to each backend."""
    n = 12
    with proxy.kagami.connect() as c:
        for i in range(n):
            resp = c.request("GET", "/text/%d" % (i + 1))
            assert resp.status == 200
            assert resp.body == backends.text_body(i + 1)
            assert "close" not in resp.connection_tokens()
            proxy.kagami.wait_log(i + 1)
    # Kage opened one backend connection per shadowed request; pools don't.
    assert len(proxy.production.client_ports()) == 1
    assert len(proxy.newdb.client_ports()) <= 2


def test_keep_alive_back_to_back(proxy):
    """Requests sent as fast as possible: shadow copies may overlap (the
    test backends are slow Python threads), so the shadow pool may grow,
    but connections are still reused."""
    n = 20
    with proxy.kagami.connect() as c:
        for i in range(n):
            assert c.request("GET", "/text/%d" % (i + 1)).status == 200
    proxy.newdb.wait_for_requests(n)
    assert len(proxy.production.client_ports()) <= 2
    assert len(proxy.newdb.client_ports()) < n


def test_backend_connections_are_reused_across_client_connections(proxy):
    for i in range(10):
        assert proxy.kagami.get("/text/5?i=%d" % i).status == 200
        proxy.kagami.wait_log(i + 1)
    assert len(proxy.production.client_ports()) == 1
    assert len(proxy.newdb.client_ports()) <= 2


def test_pipelined_requests_are_answered_in_order(proxy):
    raw = (rawhttp.build_request("GET", "/slow/300")
           + rawhttp.build_request("POST", "/echo?n=2", body=b"hello")
           + rawhttp.build_request("GET", "/text/2"))
    with proxy.kagami.connect() as c:
        c.send(raw)
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
    assert r1.body == b"slow 300\n"
    assert b'"target": "/echo?n=2"' in r2.body and b'"body": "hello"' in r2.body
    assert r3.body == backends.text_body(2)


def test_many_pipelined_gets_in_order(proxy):
    n = 10
    raw = b"".join(rawhttp.build_request("GET", "/text/%d" % i)
                   for i in range(1, n + 1))
    with proxy.kagami.connect() as c:
        c.send(raw)
        for i in range(1, n + 1):
            assert c.read_response().body == backends.text_body(i)


def test_client_connection_close_is_honoured(proxy):
    with proxy.kagami.connect() as c:
        resp = c.request("GET", "/text/3", [("Connection", "close")])
        assert resp.body == backends.text_body(3)
        assert c.closed_by_peer(timeout=2)


def test_concurrent_clients(proxy):
    paths = ["/text/30", "/binary", "/chunked", "/diff", "/slow/20"]
    expected = {"/text/30": backends.text_body(30),
                "/binary": backends.binary_body(),
                "/chunked": backends.chunked_body(),
                "/diff": backends.diff_body(None), "/slow/20": b"slow 20\n"}
    errors = []

    def client(j):
        try:
            with proxy.kagami.connect() as c:
                for i in range(5):
                    p = paths[(i + j) % len(paths)]
                    assert c.request("GET", p).body == expected[p], p
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(j,)) for j in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert len(proxy.production.received()) == 100
    assert len(proxy.kagami.wait_log(100, timeout=10)) == 100


# --- HTTP/1.0 and real clients ----------------------------------------------
def test_http10_client(proxy):
    with proxy.kagami.connect() as c:
        c.send(b"GET /text/10 HTTP/1.0\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == backends.text_body(10)
        assert not resp.chunked
        assert c.closed_by_peer(timeout=2)


def test_http10_client_gets_chunked_master_response_unchunked(proxy):
    with proxy.kagami.connect() as c:
        c.send(b"GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert not resp.chunked, "chunked framing sent to an HTTP/1.0 client"
        assert resp.body == backends.chunked_body()


def test_http_client_keep_alive(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.kagami.port,
                                      timeout=10)
    try:
        for path, body in (("/text/7", backends.text_body(7)),
                           ("/binary", backends.binary_body()),
                           ("/chunked", backends.chunked_body())):
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.read() == body
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl(proxy):
    base = "http://127.0.0.1:%d" % proxy.kagami.port
    out = subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "10", base + "/text/20",
         base + "/binary"], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == backends.text_body(20) + backends.binary_body()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_post(body_proxy):
    """curl sends Expect: 100-continue for this body size."""
    production, newdb, k = body_proxy
    body = backends.big_body(5000)
    t0 = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "10", "--data-binary", "@-",
         "-H", "Content-Type: application/octet-stream",
         "http://127.0.0.1:%d/echo" % k.port],
        input=body, capture_output=True, timeout=20)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert only_request(production, "/echo").body == body
    assert newdb.wait_for_requests(1, "/echo")[0].body == body
    assert took < 0.9, "curl POST took %.2fs (Expect: 100-continue stall?)" \
        % took


# --- latency ----------------------------------------------------------------
def median_ms(conn, raw, method, n):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        head, _, body = raw.partition(b"\r\n\r\n")
        conn.send(head + b"\r\n\r\n")  # a client that writes head and body
        if body:                        # separately, as many do
            conn.send(body)
        assert conn.read_response(method).status == 200
        times.append((time.monotonic() - t0) * 1000)
    return sorted(times)[n // 2]


def test_no_added_latency_on_kept_alive_connections(body_proxy):
    """Scenario need 1: the master path adds next to no latency. A proxy
    that writes a message in several small pieces without TCP_NODELAY
    stalls ~40 ms per request on delayed ACKs; this catches it."""
    production, newdb, k = body_proxy
    with k.connect() as c:
        get = median_ms(c, rawhttp.build_request("GET", "/text/10"), "GET", 15)
        post = median_ms(c, rawhttp.build_request("POST", "/echo",
                                                  body=b"p" * 300), "POST", 15)
    assert get < 20, "median GET through kagami: %.1f ms" % get
    assert post < 20, "median POST through kagami: %.1f ms" % post
