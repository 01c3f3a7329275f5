"""Issue point 8: bad client input gets 400/431/413 and the connection is
closed; the backends never see it; the proxy keeps serving others."""

import pytest

import backends


def assert_still_serving(k, production):
    before = len(production.received())
    assert k.get("/text/2").body == backends.text_body(2)
    assert len(production.received()) == before + 1


def send_bad(k, raw, expect_status):
    with k.connect() as c:
        # The proxy may answer and close before reading everything we send.
        c.send_lenient(raw)
        resp = c.read_response()
        assert resp.status == expect_status, resp.raw[:300]
        assert len(resp.body) < 4096
        assert c.closed_by_peer(timeout=3), "connection left open after %d" \
            % expect_status
    return resp


MALFORMED = {
    "garbage_line": b"GARBAGE\r\n\r\n",
    "binary_junk": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "missing_version": b"GET /text/1\r\nHost: x\r\n\r\n",
    "space_in_target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "header_without_colon": b"GET /text/1 HTTP/1.1\r\nHost: x\r\n"
                            b"NoColonHere\r\n\r\n",
    "space_before_colon": b"GET /text/1 HTTP/1.1\r\nHost : x\r\n\r\n",
    "bad_content_length": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: abc\r\n\r\n",
    "bad_chunk_size": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"
                      b"0\r\n\r\n",
}

SMUGGLING = {
    "cl_and_te": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                 b"0\r\n\r\n",
    "conflicting_cl": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5"
                      b"\r\nContent-Length: 6\r\n\r\nhello!",
    "te_not_chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: gzip\r\n\r\nhello",
    "negative_cl": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: -5\r\n\r\nhello",
    "conflicting_cl_list": b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5, 6\r\n\r\nhello!",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_gets_400(proxy, case):
    send_bad(proxy.kagami, MALFORMED[case], 400)
    assert proxy.production.received() == []
    assert proxy.production.protocol_errors == []
    assert_still_serving(proxy.kagami, proxy.production)


@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_ambiguous_body_length_gets_400(proxy, case):
    send_bad(proxy.kagami, SMUGGLING[case], 400)
    assert proxy.production.received() == []
    assert_still_serving(proxy.kagami, proxy.production)


@pytest.mark.parametrize("raw", [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",           # the HTTP/2 connection preface
    b"GET /text/1 HTTP/2.0\r\nHost: x\r\n\r\n",     # HTTP/2 in a request line
], ids=["h2_preface", "h2_request_line"])
def test_http2_gets_505(proxy, raw):
    resp = send_bad(proxy.kagami, raw, 505)
    assert resp.status == 505
    assert proxy.production.received() == []
    assert_still_serving(proxy.kagami, proxy.production)


def test_bad_request_after_a_good_one_on_the_same_connection(proxy):
    with proxy.kagami.connect() as c:
        assert c.request("GET", "/text/1").status == 200
        c.send_lenient(b"NOT HTTP\r\n\r\n")
        assert c.read_response().status == 400
        assert c.closed_by_peer(timeout=3)
    assert [r.path for r in proxy.production.received()] == ["/text/1"]


def test_bad_request_pipelined_after_a_good_one(proxy):
    with proxy.kagami.connect() as c:
        c.send(b"GET /text/3 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n")
        assert c.read_response().body == backends.text_body(3)
        assert c.read_response().status == 400
        assert c.closed_by_peer(timeout=3)
    assert [r.path for r in proxy.production.received()] == ["/text/3"]


def test_headers_over_default_limit_get_431(proxy):
    big = b"X-Big: " + b"a" * (70 * 1024) + b"\r\n"
    send_bad(proxy.kagami,
             b"GET /text/1 HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n", 431)
    assert proxy.production.received() == []
    assert_still_serving(proxy.kagami, proxy.production)


def test_headers_just_under_default_limit_pass(proxy):
    value = "a" * (60 * 1024)
    resp = proxy.kagami.request("GET", "/echo", [("X-Big", value)])
    assert resp.status == 200
    assert proxy.production.received()[0].header("X-Big") == value


def test_configured_max_header_bytes(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb],
                     options={"max_header_bytes": 4096})
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(60))
    send_bad(k, b"GET /text/1 HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n",
             431)
    assert production.received() == []
    assert_still_serving(k, production)


def test_too_many_header_fields_get_431(proxy):
    """config.h: max_headers (default 100) -> 431."""
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    send_bad(proxy.kagami,
             b"GET /text/1 HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431)
    assert_still_serving(proxy.kagami, proxy.production)


@pytest.fixture
def small_body_proxy(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb],
                     options={"max_body_bytes": 1000,
                              "shadow_methods": ["GET", "POST"]})
    return production, newdb, k


def test_body_over_max_body_bytes_gets_413(small_body_proxy):
    production, newdb, k = small_body_proxy
    with k.connect() as c:
        c.send_lenient(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 5000\r\n\r\n" + b"b" * 5000)
        assert c.read_response().status == 413
    assert production.received() == []
    assert_still_serving(k, production)


def test_chunked_body_over_max_body_bytes_gets_413(small_body_proxy):
    production, newdb, k = small_body_proxy
    chunks = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(10))
    with k.connect() as c:
        c.send_lenient(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + chunks
                       + b"0\r\n\r\n")
        assert c.read_response().status == 413
    # Whatever reached the backends, it was not a complete 2560-byte body.
    assert all(len(r.body) <= 1000 for r in production.received())
    assert_still_serving(k, production)


def test_body_at_max_body_bytes_passes(small_body_proxy):
    production, newdb, k = small_body_proxy
    resp = k.request("POST", "/echo", body=b"d" * 1000)
    assert resp.status == 200
    assert production.received()[0].body == b"d" * 1000
    assert newdb.wait_for_requests(1)[0].body == b"d" * 1000


def test_idle_client_is_closed_after_client_timeout(make_backend,
                                                    start_kagami):
    production = make_backend("production")
    k = start_kagami([production], options={"client_timeout": 1})
    with k.connect(timeout=4) as idle, k.connect(timeout=4) as partial:
        partial.send(b"GET /text/1 HTTP/1.1\r\nHost: x\r\n")  # never ends
        assert idle.closed_by_peer(timeout=4)
        rest = partial.reader.rest()  # raises on timeout
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408 "), rest[:200]
    assert production.received() == []
    assert_still_serving(k, production)


def test_client_timeout_does_not_cut_a_slow_master_response(make_backend,
                                                            start_kagami):
    """client_timeout is about an idle client; a client waiting for a slow
    master (within backend_timeout) gets its response."""
    production = make_backend("production")
    k = start_kagami([production], options={"client_timeout": 1,
                                            "backend_timeout": 5})
    with k.connect(timeout=5) as c:
        assert c.request("GET", "/slow/1800").body == b"slow 1800\n"
