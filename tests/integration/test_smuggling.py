"""Issue 6 point 2: request smuggling and framing.

A table of ambiguous or hostile requests, each with the one outcome RFC 9112
(and RFC 9110 where it decides) defines for it, as kagami documents it:
either kagami answers on its own (400, 413, 417, 431, 501, 505, ...) and
closes the connection, forwarding nothing; or the request is forwarded, and
then master AND shadow receive it re-framed identically (same method,
target, body bytes; one Content-Length or none; no Transfer-Encoding; the
same header fields), so that no backend can see a request boundary other
than the one kagami saw.

Every case ends with a sentinel request (on the same connection when it
stays open, else on a new one): the requests each backend received since
the case started must be exactly the expected ones followed by the sentinel,
so nothing was smuggled in, dropped or split off.

Where the RFC leaves a choice (bare LF line ends, obs-fold, a server's
Expect handling), the case asserts the choice kagami makes and documents.
Where kagami's behaviour departs from the RFC, the case still asserts the
RFC's outcome (and fails until kagami is fixed): see KNOWN_DEVIATIONS.
"""

import json
import socket
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

import rawhttp
from backends import Backend, free_port
from harness import Kagami, render_config

MAX_BODY = 65536
CLIENT_TIMEOUT = 3
CASE_TIMEOUT = 5.0


# --- the table ----------------------------------------------------------------
@dataclass
class Fwd:
    """Forwarded: the client gets the backend's answer (/echo: 200)."""
    method: str = "GET"
    target: str = "/echo"
    body: bytes = b""
    headers: dict = field(default_factory=dict)  # name -> value, None: absent
    status: int = 200


@dataclass
class Rej:
    """Answered by kagami itself, then the connection is closed."""
    status: int


@dataclass
class Cut:
    """The client closed mid-request: no answer, nothing forwarded."""


@dataclass
class Case:
    raw: bytes
    steps: list
    rfc: str
    close: bool = None      # connection closed after the last step
    eof: bool = False       # shut our sending side after the bytes
    expect_100: bool = None  # a "100 Continue" precedes the answer

    def closes(self):
        if self.close is not None:
            return self.close
        return not isinstance(self.steps[-1], Fwd)


def req(head, body=b"", method="POST", target="/echo", version="HTTP/1.1",
        host=True):
    """Raw request bytes: request line, `head` (field lines, CRLF-ended),
    an empty line, `body` as given."""
    line = b"%s %s %s\r\n" % (method.encode(), target.encode(),
                              version.encode())
    return line + (b"Host: x\r\n" if host else b"") + head + b"\r\n" + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"
HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
HELLO = Fwd("POST", body=b"hello")
GET_HELLO = Fwd("GET", body=b"hello")
SMUGGLED = b"GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

CASES = {
    # -- Content-Length and Transfer-Encoding together (RFC 9112 6.1, 6.3) --
    "cl_then_te": Case(req(b"Content-Length: 5\r\n" + CHUNKED, HELLO_CHUNKED),
                       [Rej(400)], "9112 6.1: CL+TE may be rejected; close"),
    "te_then_cl": Case(req(CHUNKED + b"Content-Length: 5\r\n", HELLO_CHUNKED),
                       [Rej(400)], "9112 6.1"),
    "te_with_cl_0": Case(req(CHUNKED + b"Content-Length: 0\r\n",
                             HELLO_CHUNKED), [Rej(400)], "9112 6.1"),
    "te_cl_http10": Case(req(CHUNKED + b"Content-Length: 5\r\n", b"hello",
                             version="HTTP/1.0", host=False),
                         [Rej(400)], "9112 6.1: TE in HTTP/1.0 is faulty"),
    # -- Transfer-Encoding variants (RFC 9112 6.1, 6.3 item 4, 7) -----------
    "te_chunked_identity": Case(
        req(b"Transfer-Encoding: chunked, identity\r\n", HELLO_CHUNKED),
        [Rej(400)], "9112 6.3.4: chunked not final -> 400"),
    "te_identity_chunked": Case(
        req(b"Transfer-Encoding: identity, chunked\r\n", HELLO_CHUNKED),
        [Rej(501)], "9112 6.1: unknown coding -> 501"),
    "te_gzip_chunked": Case(
        req(b"Transfer-Encoding: gzip, chunked\r\n", HELLO_CHUNKED),
        [Rej(501)], "9112 6.1: coding kagami does not implement -> 501"),
    "te_xchunked": Case(req(b"Transfer-Encoding: xchunked\r\n", HELLO_CHUNKED),
                        [Rej(400)], "9112 6.3.4: final coding not chunked"),
    "te_quoted": Case(req(b'Transfer-Encoding: "chunked"\r\n', HELLO_CHUNKED),
                      [Rej(400)], "9112 7: a coding is a token"),
    "te_empty": Case(req(b"Transfer-Encoding: \r\n"), [Rej(400)],
                     "9112 6.3.4: no final chunked"),
    "te_vertical_tab": Case(req(b"Transfer-Encoding:\x0bchunked\r\n",
                                HELLO_CHUNKED), [Rej(400)],
                            "9110 5.5: VT is neither OWS nor a token"),
    "te_space_before_colon": Case(
        req(b"Transfer-Encoding : chunked\r\n", HELLO_CHUNKED), [Rej(400)],
        "9112 5.1: whitespace before the colon MUST be rejected"),
    "te_tab_before_colon": Case(
        req(b"Transfer-Encoding\t: chunked\r\n", HELLO_CHUNKED), [Rej(400)],
        "9112 5.1"),
    "te_tab_separated": Case(
        req(b"Transfer-Encoding:\tchunked\t\r\n", HELLO_CHUNKED), [HELLO],
        "9112 5: HTAB is optional whitespace around the value"),
    "te_uppercase": Case(req(b"Transfer-Encoding: CHUNKED\r\n",
                             HELLO_CHUNKED), [HELLO],
                         "9112 7: coding names are case-insensitive"),
    "te_empty_list_element": Case(
        req(b"Transfer-Encoding: , chunked\r\n", HELLO_CHUNKED), [HELLO],
        "9110 5.6.1: empty list elements are ignored"),
    "te_second_header_identity": Case(
        req(CHUNKED + b"Transfer-Encoding: identity\r\n", HELLO_CHUNKED),
        [Rej(400)], "9110 5.3: fields combine to 'chunked, identity'"),
    "te_second_header_chunked": Case(
        req(CHUNKED + CHUNKED, HELLO_CHUNKED), [Rej(400)],
        "9112 6.1: chunked MUST NOT be applied twice"),
    "te_second_header_after_gzip": Case(
        req(b"Transfer-Encoding: gzip\r\n" + CHUNKED, HELLO_CHUNKED),
        [Rej(501)], "9110 5.3 + 9112 6.1"),
    "te_in_http10": Case(req(CHUNKED, HELLO_CHUNKED, version="HTTP/1.0",
                             host=False),
                         [Rej(400)], "9112 6.1: faulty framing, close"),
    # -- obs-fold (RFC 9112 5.2: reject, or replace each fold with SP) ------
    "obs_fold_value": Case(
        req(b"X-Folded: a\r\n b\r\n", method="GET"),
        [Fwd("GET", headers={"X-Folded": "a b"})],
        "9112 5.2: kagami replaces the fold with SP"),
    "obs_fold_transfer_encoding": Case(
        req(b"Transfer-Encoding:\r\n chunked\r\n", HELLO_CHUNKED), [HELLO],
        "9112 5.2: unfolded before interpreting"),
    "obs_fold_te_list": Case(
        req(CHUNKED + b" , identity\r\n", HELLO_CHUNKED), [Rej(400)],
        "9112 5.2 + 6.3.4: unfolds to 'chunked , identity'"),
    "obs_fold_content_length": Case(
        req(b"Content-Length:\r\n 5\r\n", b"hello"), [HELLO], "9112 5.2"),
    "whitespace_before_first_field": Case(
        b"GET /echo HTTP/1.1\r\n X-A: b\r\nHost: x\r\n\r\n", [Rej(400)],
        "9112 2.2: reject, or ignore the line"),
    # -- Content-Length (RFC 9112 6.3 item 5, RFC 9110 8.6) -----------------
    "cl_duplicate_same": Case(
        req(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
        [Rej(400)], "9110 8.6: may reject"),
    "cl_duplicate_different": Case(
        req(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        [Rej(400)], "9112 6.3.5: invalid -> 400"),
    "cl_list": Case(req(b"Content-Length: 5, 5\r\n", b"hello"), [Rej(400)],
                    "9110 8.6"),
    "cl_negative": Case(req(b"Content-Length: -5\r\n", b"hello"), [Rej(400)],
                        "9112 6.3.5"),
    "cl_minus_zero": Case(req(b"Content-Length: -0\r\n"), [Rej(400)],
                          "9112 6.3.5"),
    "cl_plus": Case(req(b"Content-Length: +5\r\n", b"hello"), [Rej(400)],
                    "9112 6.3.5: 1*DIGIT"),
    "cl_hex": Case(req(b"Content-Length: 0x5\r\n", b"hello"), [Rej(400)],
                   "9112 6.3.5"),
    "cl_inner_space": Case(req(b"Content-Length: 5 5\r\n", b"hello"),
                           [Rej(400)], "9112 6.3.5"),
    "cl_empty": Case(req(b"Content-Length:\r\n", b"hello"), [Rej(400)],
                     "9112 6.3.5"),
    "cl_huge": Case(req(b"Content-Length: 99999999999999999999999\r\n",
                        b"hello"), [Rej(400)],
                    "9110 8.6: overflow must not be misread"),
    "cl_over_max_body": Case(req(b"Content-Length: 1000000\r\n", b"hello"),
                             [Rej(413)], "9110 15.5.14"),
    "cl_leading_zeros": Case(req(b"Content-Length: 0005\r\n", b"hello"),
                             [HELLO], "9112 6.2: 1*DIGIT; re-framed as 5"),
    "cl_trailing_spaces": Case(req(b"Content-Length: 5  \r\n", b"hello"),
                               [HELLO], "9112 5: OWS is not the value"),
    "cl_tabs": Case(req(b"Content-Length:\t5\t\r\n", b"hello"), [HELLO],
                    "9112 5: HTAB is OWS too"),
    "cl_zero_get": Case(req(b"Content-Length: 0\r\n", method="GET"),
                        [Fwd("GET")], "9112 6.2"),
    "get_with_body": Case(req(b"Content-Length: 5\r\n", b"hello",
                              method="GET"), [GET_HELLO],
                          "9112 6.2: GET may carry content; framed"),
    "post_without_length": Case(req(b""), [Fwd("POST")],
                                "9112 6.3.7: no CL/TE -> length 0"),
    "connection_lists_content_length": Case(
        req(b"Connection: Content-Length\r\nContent-Length: 5\r\n", b"hello"),
        [HELLO], "framing survives hop-by-hop removal"),
    "cl_body_short_then_eof": Case(
        req(b"Content-Length: 10\r\n", b"hello"), [Cut()],
        "9112 8: incomplete request, nothing forwarded", eof=True),
    # -- chunked framing (RFC 9112 7.1) ------------------------------------
    "chunk_size_not_hex": Case(req(CHUNKED, b"zz\r\nhello\r\n0\r\n\r\n"),
                               [Rej(400)], "9112 7.1"),
    "chunk_size_negative": Case(req(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"),
                                [Rej(400)], "9112 7.1"),
    "chunk_size_0x": Case(req(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"),
                          [Rej(400)], "9112 7.1"),
    "chunk_size_leading_space": Case(req(CHUNKED, b" 5\r\nhello\r\n0\r\n\r\n"),
                                     [Rej(400)], "9112 7.1"),
    "chunk_size_overflow": Case(
        req(CHUNKED, b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), [Rej(400)],
        "9112 7.1: MUST anticipate overflow"),
    "chunk_size_wraps_to_5": Case(
        req(CHUNKED, b"10000000000000005\r\nhello\r\n0\r\n\r\n"), [Rej(400)],
        "9112 7.1: 2^64 + 5 is not 5"),
    "chunk_size_leading_zeros": Case(req(CHUNKED, b"0005\r\nhello\r\n0\r\n\r\n"),
                                     [HELLO], "9112 7.1: 1*HEXDIG"),
    "chunk_ext": Case(req(CHUNKED, b'5;a=b;c="d e"\r\nhello\r\n0;z\r\n\r\n'),
                      [HELLO], "9112 7.1.1: extensions ignored"),
    "chunk_ext_bws": Case(req(CHUNKED, b"5 ;a=b\r\nhello\r\n0\r\n\r\n"), [HELLO],
                          "9112 7.1.1: BWS before ';'"),
    "chunk_ext_bare_lf": Case(req(CHUNKED, b"5;a\nhello\r\n0\r\n\r\n"),
                              [Rej(400)],
                              "9112 7.1: no LF inside a chunk-size line"),
    "chunk_ext_control_char": Case(req(CHUNKED, b"5;a\x01b\r\nhello\r\n0\r\n\r\n"),
                                   [Rej(400)], "9112 7.1.1"),
    "chunk_data_without_crlf": Case(req(CHUNKED, b"5\r\nhelloXX0\r\n\r\n"),
                                    [Rej(400)], "9112 7.1: data CRLF"),
    "chunk_data_with_bare_lf": Case(req(CHUNKED, b"5\r\nhello\n0\r\n\r\n"),
                                    [Rej(400)], "9112 7.1: data CRLF"),
    "chunk_lines_bare_lf": Case(req(CHUNKED, b"5\nhello\n0\n\n"), [Rej(400)],
                                "9112 7.1"),
    "chunk_missing_final_crlf_eof": Case(
        req(CHUNKED, b"5\r\nhello\r\n0\r\n"), [Cut()],
        "9112 8: incomplete, nothing forwarded", eof=True),
    "chunk_missing_final_crlf_then_request": Case(
        req(CHUNKED, b"5\r\nhello\r\n0\r\n")
        + b"GET /echo?next HTTP/1.1\r\nHost: x\r\n\r\n", [Rej(400)],
        "9112 7.1.2: the next request line is no trailer field"),
    "chunk_trailer_dropped": Case(
        req(CHUNKED, b"5\r\nhello\r\n0\r\nHost: evil\r\nX-Trailer: v\r\n\r\n"),
        [Fwd("POST", body=b"hello", headers={"Host": "x", "X-Trailer": None})],
        "9110 6.5.1: trailers MUST NOT be merged into the header section"),
    "chunk_trailer_obs_fold": Case(
        req(CHUNKED, b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), [Rej(400)],
        "9112 5.2 (kagami rejects folds in trailers)"),
    "chunk_over_max_body": Case(
        req(CHUNKED, b"20000\r\n" + b"a" * 0x20000 + b"\r\n0\r\n\r\n"),
        [Rej(413)], "9110 15.5.14"),
    "chunked_then_pipelined": Case(
        req(CHUNKED, b"0\r\n\r\n") + b"GET /echo?after HTTP/1.1\r\nHost: x\r\n\r\n",
        [Fwd("POST"), Fwd("GET", "/echo?after")],
        "9112 9.3: what follows the last chunk is the next request"),
    # -- line endings and bytes (RFC 9112 2.2, 5) ----------------------------
    "bare_lf_line_ends": Case(b"GET /echo HTTP/1.1\nHost: x\nX-A: b\n\n",
                              [Fwd("GET", headers={"X-A": "b"})],
                              "9112 2.2: a recipient MAY accept bare LF"),
    "bare_cr_in_value": Case(req(b"X-A: b\rc\r\n", method="GET"), [Rej(400)],
                             "9112 2.2: bare CR MUST be invalid or SP"),
    "bare_cr_line_end": Case(b"GET /echo HTTP/1.1\rHost: x\r\n\r\n",
                             [Rej(400)], "9112 2.2"),
    "nul_in_request_line": Case(b"GET /ec\x00ho HTTP/1.1\r\nHost: x\r\n\r\n",
                                [Rej(400)], "9112 3"),
    "nul_in_field_name": Case(req(b"X-\x00A: b\r\n", method="GET"),
                              [Rej(400)], "9110 5.1: token"),
    "nul_in_field_value": Case(req(b"X-A: b\x00c\r\n", method="GET"),
                               [Rej(400)], "9110 5.5: NUL MUST be rejected"),
    "space_in_field_name": Case(req(b"X A: b\r\n", method="GET"), [Rej(400)],
                                "9110 5.1"),
    "empty_field_name": Case(req(b": b\r\n", method="GET"), [Rej(400)],
                             "9110 5.1"),
    "long_request_line": Case(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n"
                              b"Host: x\r\n\r\n", [Rej(414)],
                              "9112 3: a target too long MUST get 414"),
    "long_field_line": Case(req(b"X-A: " + b"a" * 70000 + b"\r\n",
                                method="GET"), [Rej(431)], "RFC 6585 5"),
    "leading_empty_line": Case(b"\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
                               [Fwd("GET")],
                               "9112 2.2: SHOULD ignore one empty line"),
    "multiple_spaces_request_line": Case(
        b"GET  /echo  HTTP/1.1\r\nHost: x\r\n\r\n", [Fwd("GET")],
        "9112 3: MAY parse on whitespace-delimited words"),
    # -- versions (RFC 9112 2.3, RFC 9110 2.5) --------------------------------
    "http09": Case(b"GET /echo\r\n\r\n", [Rej(400)],
                   "HTTP/0.9 is not HTTP/1.1 syntax"),
    "http20_request_line": Case(b"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n",
                                [Rej(505)], "9110 15.6.6"),
    "http30_request_line": Case(b"GET /echo HTTP/3.0\r\nHost: x\r\n\r\n",
                                [Rej(505)], "9110 15.6.6"),
    "http12": Case(b"GET /echo HTTP/1.2\r\nHost: x\r\n\r\n", [Fwd("GET")],
                   "9110 2.5: a higher minor version is served as 1.1"),
    "http1_10": Case(b"GET /echo HTTP/1.10\r\nHost: x\r\n\r\n", [Rej(400)],
                     "9112 2.3: DIGIT.DIGIT"),
    # -- targets and Host (RFC 9112 3.2) ---------------------------------------
    "absolute_uri": Case(
        b"GET http://evil.example/echo?a=1 HTTP/1.1\r\nHost: good.example"
        b"\r\n\r\n",
        [Fwd("GET", "/echo?a=1", headers={"Host": "evil.example"})],
        "9112 3.2.2: accepted, the target's authority replaces Host; "
        "3.2.1: origin-form to an origin server"),
    "absolute_uri_without_host": Case(
        b"GET http://evil.example/echo HTTP/1.1\r\n\r\n", [Rej(400)],
        "9112 3.2: HTTP/1.1 without Host MUST get 400"),
    "fragment_in_target": Case(b"GET /echo#frag HTTP/1.1\r\nHost: x\r\n\r\n",
                               [Rej(400)], "9112 3.2.1: no fragment"),
    "options_asterisk": Case(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                             [Fwd("OPTIONS", "*", status=404)],
                             "9112 3.2.4: asterisk-form"),
    "connect": Case(b"CONNECT evil.example:443 HTTP/1.1\r\n"
                    b"Host: evil.example:443\r\n\r\n", [Rej(501)],
                    "9110 9.3.6: kagami tunnels nothing"),
    "missing_host": Case(b"GET /echo HTTP/1.1\r\n\r\n", [Rej(400)],
                         "9112 3.2: MUST 400"),
    "duplicate_host": Case(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                           [Rej(400)], "9112 3.2: MUST 400"),
    "invalid_host": Case(b"GET /echo HTTP/1.1\r\nHost: a b/c\r\n\r\n",
                         [Rej(400)], "9112 3.2: MUST 400"),
    "http10_without_host": Case(
        b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", [HELLO],
        "9112 3.2: Host only required in HTTP/1.1", close=True),
    # -- Expect (RFC 9110 10.1.1) ------------------------------------------------
    "expect_100_with_body": Case(
        req(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"),
        [HELLO], "9110 10.1.1: 100, then the answer", expect_100=True),
    "expect_100_without_body": Case(
        req(b"Expect: 100-continue\r\n", method="GET"), [Fwd("GET")],
        "9110 10.1.1: MAY omit 100 when there is no content",
        expect_100=False),
    "expect_100_http10": Case(
        req(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello",
            version="HTTP/1.0", host=False), [HELLO],
        "9110 10.1.1: MUST ignore 100-continue from HTTP/1.0", close=True,
        expect_100=False),
    "expect_other": Case(req(b"Expect: something-else\r\n", method="GET"),
                         [Rej(417)], "9110 10.1.1: MAY 417"),
    # -- upgrades (RFC 9110 7.8: a server MAY ignore Upgrade) -----------------
    "upgrade_websocket": Case(
        req(b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n", method="GET")
        + b"GET /echo?pipelined HTTP/1.1\r\nHost: x\r\n\r\n",
        [Fwd("GET", headers={"Upgrade": None, "Connection": None})],
        "9110 7.8: ignored, not forwarded; kagami then closes", close=True),
    "upgrade_with_body": Case(
        req(b"Connection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n",
            b"hello"),
        [Fwd("POST", body=b"hello", headers={"Upgrade": None})],
        "9110 7.8", close=True),
    # -- pipelining and requests hidden in bodies ------------------------------
    "pipelined_after_bad": Case(
        b"GET /echo?first HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /echo?third HTTP/1.1\r\nHost: x\r\n\r\n",
        [Fwd("GET", "/echo?first"), Rej(400)],
        "9112 9.3: answered in order; nothing after a bad one"),
    "request_in_body": Case(
        req(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED),
        [Fwd("POST", body=SMUGGLED)],
        "9112 6.2: the body is content, never a request"),
    "request_in_get_body": Case(
        req(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED, method="GET"),
        [Fwd("GET", body=SMUGGLED)],
        "9112 6.2: CL on a GET still frames"),
    "request_in_chunked_body": Case(
        req(CHUNKED, b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)),
        [Fwd("POST", body=SMUGGLED)],
        "9112 7.1"),
}

# Cases where kagami (today) departs from the RFC outcome asserted above.
KNOWN_DEVIATIONS = {
    "cl_tabs": "http_parser 2.9 rejects a trailing HTAB in Content-Length",
}

# Cases also sent a few bytes at a time (framing split across reads).
SPLIT = sorted(n for n, c in CASES.items()
               if len(c.raw) < 2048 and (b"chunked" in c.raw.lower()
                                         or n.startswith(("cl_", "obs_fold"))))


# --- the rig: one kagami, master + shadow, for the whole table ----------------
@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    master = Backend("production").start()
    shadow = Backend("newdb").start()
    workdir = tmp_path_factory.mktemp("smuggling")
    port = free_port()
    options = {"shadow_methods": ["GET", "HEAD", "POST", "OPTIONS"],
               "max_body_bytes": MAX_BODY, "client_timeout": CLIENT_TIMEOUT,
               "backend_timeout": 5}
    text = render_config("127.0.0.1:%d" % port, [master, shadow],
                         "production", workdir / "diffs.jsonl", options)
    k = Kagami(workdir, text, port, workdir / "diffs.jsonl").start()
    yield SimpleNamespace(k=k, master=master, shadow=shadow, seq=[0])
    try:
        rc = k.stop()
    finally:
        master.stop()
        shadow.stop()
    k.assert_clean()
    assert rc == 0, k.stderr()[-3000:]


def send(c, raw, split):
    if not split:
        return c.send_lenient(raw)
    for i in range(0, len(raw), 3):
        if not c.send_lenient(raw[i:i + 3]):
            return False
        time.sleep(0.0005)
    return True


def first_head(c):
    """The next response head as raw bytes, left unread in the reader."""
    head = c.reader.until(b"\r\n\r\n")
    c.reader.buf = head + c.reader.buf
    c.reader.taken = b""
    return head


def read_kagami_status(c, status):
    resp = c.read_response()
    assert resp.status == status, resp.raw[:300]
    assert resp.header("Content-Type") == "text/plain"
    assert "close" in resp.connection_tokens()
    assert len(resp.body) < 200
    return resp


def wait_sentinel(backend, target):
    deadline = time.monotonic() + CASE_TIMEOUT
    while time.monotonic() < deadline:
        if any(r.target == target for r in backend.received()):
            return
        time.sleep(0.005)
    raise AssertionError("%s never got the sentinel %s" % (backend.name,
                                                           target))


def wait_all(backend, start, want):
    """Waits until `backend` received every (method, target) of `want`
    since request number `start` (and then a moment for strays)."""
    deadline = time.monotonic() + CASE_TIMEOUT
    while time.monotonic() < deadline:
        got = {(r.method, r.target) for r in backend.received()[start:]}
        if got >= set(want):
            return
        time.sleep(0.005)


def without_host(headers):
    return [(k, v) for k, v in headers if k.lower() != "host"]


def check_forwarded(name, fwd, got, sent_host):
    """`got` is what one backend received for the step `fwd`."""
    assert got.method == fwd.method, (name, got.method)
    assert got.target == fwd.target, (name, got.target)
    assert got.version == "HTTP/1.1"
    assert got.body == fwd.body, (name, got.body[:100])
    assert not got.chunked
    assert got.header_all("Transfer-Encoding") == []
    assert got.header_all("Expect") == []
    cl = got.header_all("Content-Length")
    if fwd.body:
        assert cl == [str(len(fwd.body))], (name, cl)
    else:
        assert cl in ([], ["0"]), (name, cl)
    if sent_host:
        assert len(got.header_all("Host")) == 1, (name, got.headers)
    for hname, value in fwd.headers.items():
        want = [] if value is None else [value]
        assert got.header_all(hname) == want, (name, hname, got.headers)


def run_case(rig, name, split=False):
    case = CASES[name]
    k, master, shadow = rig.k, rig.master, rig.shadow
    m0, s0 = len(master.received()), len(shadow.received())
    errors0 = (len(master.protocol_errors), len(shadow.protocol_errors))
    rig.seq[0] += 1
    sentinel = "/text/1?sentinel=%d" % rig.seq[0]
    sentinel_req = ("GET %s HTTP/1.1\r\nHost: sentinel\r\n\r\n"
                    % sentinel).encode()
    c = k.connect(timeout=CASE_TIMEOUT)
    try:
        send(c, case.raw, split)
        if case.eof:
            c.sock.shutdown(socket.SHUT_WR)
        if case.expect_100 is not None:
            head = first_head(c)
            is_100 = head.startswith(b"HTTP/1.1 100 ")
            assert is_100 == case.expect_100, (name, head)
            if is_100:
                c.reader.until(b"\r\n\r\n")
        for step in case.steps:
            if isinstance(step, Cut):
                assert c.reader.rest() == b"", name
                continue
            if isinstance(step, Rej):
                read_kagami_status(c, step.status)
                continue
            resp = c.read_response(step.method)
            assert resp.status == step.status, (name, resp.raw[:300])
            assert 100 <= resp.status and resp.status != 101
            if step.target == "/echo" or step.target.startswith("/echo?"):
                doc = json.loads(resp.body)
                assert doc["backend"] == "production"
                assert doc["body"].encode("latin-1") == step.body
        if case.closes():
            assert c.closed_by_peer(timeout=CASE_TIMEOUT), \
                "%s: connection left open" % name
            c.close()
            c = k.connect(timeout=CASE_TIMEOUT)
        c.send(sentinel_req)
        resp = c.read_response()
        assert resp.status == 200 and resp.body.startswith(b"00001 "), name
    finally:
        c.close()
    fwds = [s for s in case.steps if isinstance(s, Fwd)]
    want = [(f.method, f.target) for f in fwds] + [("GET", sentinel)]
    # The master gets requests in order; a shadow's copies travel on
    # separate pooled connections and may arrive in any order.
    wait_sentinel(master, sentinel)
    wait_all(shadow, s0, want)
    got_m = master.received()[m0:]
    got_s = shadow.received()[s0:]
    assert [(r.method, r.target) for r in got_m] == want, name
    assert sorted((r.method, r.target) for r in got_s) == sorted(want), name
    sent_host = b"\nhost:" in case.raw.lower()
    by_target = {r.target: r for r in got_s}
    for fwd, gm in zip(fwds, got_m):
        gs = by_target[gm.target]
        check_forwarded(name, fwd, gm, sent_host)
        check_forwarded(name, fwd, gs, sent_host)
        # The same request boundary and the same fields for every backend.
        assert gs.body == gm.body
        if sent_host:
            assert gs.headers == gm.headers, (name, gm.headers, gs.headers)
        else:  # kagami supplies each backend's own Host
            assert without_host(gs.headers) == without_host(gm.headers)
    assert (len(master.protocol_errors), len(shadow.protocol_errors)) \
        == errors0, (master.protocol_errors, shadow.protocol_errors)


# --- the tests ------------------------------------------------------------------
def test_the_table_is_big_enough():
    assert len(CASES) >= 40


def deviation(name):
    """A known departure from the RFC outcome stays asserted, as a strict
    expected failure: it is listed in the results, and the day kagami
    meets the RFC the test turns red until the entry is removed."""
    why = KNOWN_DEVIATIONS.get(name)
    return [pytest.mark.xfail(reason=why, strict=True)] if why else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=deviation(n))
                                  for n in sorted(CASES)])
def test_case(rig, name):
    run_case(rig, name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=deviation(n))
                                  for n in SPLIT])
def test_case_split_across_reads(rig, name):
    run_case(rig, name, split=True)


def test_expect_100_continue_waits_for_the_client(rig):
    """The client sends the head, waits for 100 Continue, only then sends
    the body; backends get the body with a Content-Length and no Expect."""
    k, master, shadow = rig.k, rig.master, rig.shadow
    with k.connect(timeout=CASE_TIMEOUT) as c:
        c.send(b"POST /echo?expect HTTP/1.1\r\nHost: x\r\n"
               b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert c.reader.until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert [r for r in master.received() if r.target == "/echo?expect"] \
            == []
        c.send(b"hello")
        resp = c.read_response()
        assert resp.status == 200
        assert json.loads(resp.body)["body"] == "hello"
    for b in (master, shadow):
        wait_all(b, 0, [("POST", "/echo?expect")])
        got = [r for r in b.received() if r.target == "/echo?expect"]
        assert len(got) == 1
        assert got[0].body == b"hello"
        assert got[0].header_all("Content-Length") == ["5"]
        assert got[0].header_all("Expect") == []


def test_kagami_still_serves_after_the_table(rig):
    resp = rig.k.get("/text/3")
    assert resp.status == 200
