"""Issue point 7: failing backends and clients.

A shadow that refuses, resets, hangs, or sends garbage is an `error` in the
diff log and changes nothing for the client. A master that fails gives 502
(504 on timeout). A client that goes away mid-way releases everything (the
teardown's sanitizer check catches leaks and use-after-free)."""

import socket
import threading
import time

import pytest

import backends
import rawhttp
from checks import only_request

SHADOW_FAULTS = ["refuse", "stall", "hang", "reset", "reset_mid_body", "garbage",
                 "close", "short_body"]
BACKEND_TIMEOUT = 2


def start(make_backend, start_kagami, master_fault=None, shadow_fault=None,
          timeout=BACKEND_TIMEOUT):
    production = make_backend("production", fault=master_fault)
    newdb = make_backend("newdb", fault=shadow_fault)
    k = start_kagami([production, newdb],
                     options={"backend_timeout": timeout})
    return production, newdb, k


# --- shadow faults ------------------------------------------------------------
@pytest.mark.parametrize("fault", SHADOW_FAULTS)
def test_shadow_fault_does_not_reach_the_client(make_backend, start_kagami,
                                                fault):
    production, newdb, k = start(make_backend, start_kagami,
                                 shadow_fault=fault)
    with k.connect() as c:
        for i in (1, 2):  # and the client connection stays usable
            t0 = time.monotonic()
            resp = c.request("GET", "/text/200?i=%d" % i)
            took = time.monotonic() - t0
            assert resp.status == 200
            assert resp.body == backends.text_body(200)
            assert took < 1.0, "master response took %.2fs" % took
    for i in (1, 2):
        e = k.wait_log_url("/text/200?i=%d" % i,
                           timeout=BACKEND_TIMEOUT + 5)[0]
        shadow = e["backends"]["newdb"]
        assert isinstance(shadow.get("error"), str) and shadow["error"], e
        assert "status" not in shadow, e
        assert e["backends"]["production"]["status"] == 200
        assert e["equal"] is False


def test_slow_shadow_does_not_slow_the_client(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", delay=1.5)
    k = start_kagami([production, newdb])
    t0 = time.monotonic()
    with k.connect() as c:
        for i in range(5):
            assert c.request("GET", "/text/3?i=%d" % i).status == 200
    took = time.monotonic() - t0
    assert took < 1.0, "5 requests took %.2fs behind a slow shadow" % took
    entries = k.wait_log(5, timeout=10)
    for e in entries:
        assert e["backends"]["newdb"]["elapsed_ms"] >= 1400, e
        assert e["backends"]["production"]["elapsed_ms"] < 1000, e


def test_stalled_shadow_does_not_block_a_big_request_body(make_backend,
                                                          start_kagami):
    """The shadow never reads: forwarding the body to it blocks once the
    socket buffers are full. The master path must not wait for it, and the
    copy kept for it must stay bounded (the teardown's LeakSanitizer and the
    exit code catch the rest)."""
    production = make_backend("production")
    newdb = make_backend("newdb", fault="stall")
    k = start_kagami([production, newdb],
                     options={"backend_timeout": BACKEND_TIMEOUT,
                              "shadow_methods": ["POST"]})
    body = backends.big_body(8 << 20)
    t0 = time.monotonic()
    resp = k.request("POST", "/echo", body=body)
    took = time.monotonic() - t0
    assert resp.status == 200
    assert only_request(production, "/echo").body == body
    assert took < 1.5, "POST took %.2fs behind a stalled shadow" % took
    e = k.wait_log_url("/echo", timeout=BACKEND_TIMEOUT + 5)[0]
    assert "error" in e["backends"]["newdb"], e


def test_shadow_recovers_after_a_fault(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami,
                                 shadow_fault="reset")
    assert k.get("/text/1?a").status == 200
    assert "error" in k.wait_log_url("/text/1?a")[0]["backends"]["newdb"]
    newdb.fault = None
    assert k.get("/text/1?b").status == 200
    e = k.wait_log_url("/text/1?b")[0]
    assert e["backends"]["newdb"]["status"] == 200 and e["equal"] is True


# --- master faults ------------------------------------------------------------
@pytest.mark.parametrize("fault", ["refuse", "reset", "garbage", "close"])
def test_master_failure_gives_502(make_backend, start_kagami, fault):
    production, newdb, k = start(make_backend, start_kagami,
                                 master_fault=fault)
    with k.connect() as c:
        t0 = time.monotonic()
        resp = c.request("GET", "/text/5")
        took = time.monotonic() - t0
    assert resp.status == 502
    assert len(resp.body) < 1024
    assert took < 1.5, "502 after %.2fs" % took
    if fault != "refuse":
        production.fault = None
        assert k.get("/text/5").body == backends.text_body(5)


def test_master_with_conflicting_content_length_gives_502(make_backend,
                                                          start_kagami):
    production, newdb, k = start(make_backend, start_kagami)
    with k.connect() as c:
        resp = c.request("GET", "/conflicting-length")
        assert resp.status == 502
        assert len(resp.body) < 1024
    assert k.get("/text/2").body == backends.text_body(2)


def test_master_timeout_gives_504(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami,
                                 master_fault="hang", timeout=1)
    t0 = time.monotonic()
    resp = k.get("/text/5")
    took = time.monotonic() - t0
    assert resp.status == 504
    assert len(resp.body) < 1024
    assert 0.8 <= took < 4.0, "504 after %.2fs with backend_timeout=1" % took


@pytest.mark.parametrize("fault,status", [("hang", 504), ("reset", 502)])
def test_master_failure_answer_to_head_has_no_body(make_backend, start_kagami,
                                                   fault, status):
    """kagami's own 502/504 to a HEAD is a head only: a body would be read
    by a keep-alive client as the start of its next response. (Found by the
    soak: a HEAD whose master timed out desynchronised the connection.)"""
    production, newdb, k = start(make_backend, start_kagami,
                                 master_fault=fault, timeout=1)
    with k.connect(timeout=BACKEND_TIMEOUT + 3) as c:
        c.send(rawhttp.build_request("HEAD", "/text/5"))
        head = c.reader.until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert b"Content-Length: " in head  # what a GET would have got
        production.fault = None
        resp = c.request("GET", "/text/6")  # the same connection, in step
        assert resp.status == 200
        assert resp.body == backends.text_body(6)


class EarlyAnswerMaster:
    """A master that answers a POST with 413 as soon as it has the head,
    never reading the body, and keeps the connection open; a GET gets
    "ok". Whatever reaches it where a request line should be and is none
    is counted in `bad`."""

    def __init__(self):
        self.name = "production"
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.bad = 0
        self.connections = 0
        self.stop = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buf = b""
        with conn:
            while not self.stop:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0]
                if line.startswith(b"POST "):
                    conn.sendall(b"HTTP/1.1 413 Content Too Large\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                    buf = b""  # never reads the body: its bytes come next
                elif line.startswith(b"GET ") and line.endswith(b" HTTP/1.1"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                else:
                    self.bad += 1
                    return

    def close(self):
        self.stop = True
        self.sock.close()


def test_master_answering_before_the_body_is_sent_is_not_reused(start_kagami):
    """When the master answers before it has read the whole request body,
    the connection must not go back to the pool: the rest of the body would
    reach the master as the next request."""
    master = EarlyAnswerMaster()
    try:
        k = start_kagami([master], options={"max_body_bytes": "64MiB"})
        body = b"x" * (48 * 1024 * 1024)  # more than the socket buffers take
        with k.connect(timeout=20) as c:
            resp = c.request("POST", "/upload", body=body)
            assert resp.status == 413
        for i in range(3):
            resp = k.get("/after/%d" % i)
            assert resp.status == 200 and resp.body == b"ok"
        assert master.bad == 0
        assert master.connections >= 2
    finally:
        master.close()


@pytest.mark.parametrize("fault", ["reset_mid_body", "short_body"])
def test_master_failing_mid_body_closes_the_client(make_backend, start_kagami,
                                                   fault):
    """The head is already relayed, so no 502 is possible: the client must
    see the response cut short (connection closed), not wait forever and
    not get a body padded or reused for another request."""
    production, newdb, k = start(make_backend, start_kagami,
                                 master_fault=fault)
    t0 = time.monotonic()
    with k.connect(timeout=BACKEND_TIMEOUT + 3) as c:
        with pytest.raises(rawhttp.IncompleteResponse) as exc:
            c.request("GET", "/text/200")
    assert time.monotonic() - t0 < BACKEND_TIMEOUT + 2
    assert exc.value.partial.startswith(b"HTTP/1.1 200 ")
    production.fault = None
    assert k.get("/text/3").body == backends.text_body(3)


def test_master_closing_idle_pooled_connection(make_backend, start_kagami):
    """A backend may close an idle kept-alive connection at any time; the
    next request must not fail because the proxy reused it."""
    production, newdb, k = start(make_backend, start_kagami)
    assert k.get("/text/2").status == 200
    production.drop_connections()
    newdb.drop_connections()
    time.sleep(0.2)
    assert k.get("/text/3").body == backends.text_body(3)


def test_master_connection_close_response(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami)
    with k.connect() as c:
        assert c.request("GET", "/closing").body == b"closing\n"
        assert c.request("GET", "/text/2").body == backends.text_body(2)
        assert c.request("GET", "/eof").body == backends.text_body(50)


# --- clients going away -------------------------------------------------------
def test_client_gone_while_master_is_slow(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami)
    for i in range(5):
        c = k.connect()
        c.send(rawhttp.build_request("GET", "/slow/400?i=%d" % i))
        production.wait_for_requests(i + 1, "/slow/400")  # master in flight
        c.close()
    assert k.get("/text/4").body == backends.text_body(4)
    time.sleep(0.6)  # let the abandoned exchanges finish on the backends
    assert k.get("/text/4").body == backends.text_body(4)


def test_client_gone_mid_request_body(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami)
    c = k.connect()
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
           + b"a" * 1000)
    time.sleep(0.1)
    c.close()
    c = k.connect()
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
           b"\r\n\r\n10\r\n0123456789abcdef\r\n")
    time.sleep(0.1)
    c.close()
    assert k.get("/text/4").body == backends.text_body(4)


def test_client_gone_mid_response(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami)
    for i in range(3):
        c = k.connect()
        c.send(rawhttp.build_request("GET", "/big/%d?i=%d" % (20 << 20, i)))
        c.reader.until(b"\r\n\r\n")
        c.reader.exact(1000)
        c.close()
    assert k.get("/text/4").body == backends.text_body(4)
    with k.connect() as c:  # and the master pool still works for big ones
        resp = c.request("GET", "/big/%d" % (1 << 20))
        assert resp.body == backends.big_body(1 << 20)


def test_client_gone_while_shadow_hangs(make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami,
                                 shadow_fault="hang", timeout=1)
    with k.connect() as c:
        assert c.request("GET", "/text/2").status == 200
    # The client left before the shadow timed out; the exchange must still
    # be completed and freed once the shadow times out.
    e = k.wait_log_url("/text/2", timeout=6)[0]
    assert "error" in e["backends"]["newdb"]


def test_huge_response_head(make_backend, start_kagami):
    """A backend head over the parser's limit (256 KiB with the default
    max_header_bytes) is an invalid response: 502 from the master, an
    error for a shadow; a head under it passes."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    assert k.get("/bighead/100").status == 200
    assert k.get("/bighead/400").status == 502
    e = k.wait_log_url("/bighead/400")[0]
    assert e["backends"]["production"]["error"] == "invalid response"
    assert e["backends"]["newdb"]["error"] == "invalid response"
    assert k.get("/text/1").status == 200  # still serving
