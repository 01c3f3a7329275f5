"""A scriptable HTTP/1.1 test backend for kagami's black-box tests.

Built on raw sockets and one thread per connection, so the framing of every
response is exactly what this file writes. Each Backend records the requests
it receives (method, target, headers with their original spelling, de-chunked
body, and the client-side port of the connection, which tells tests whether
the proxy reused a pooled connection).

In-process use (what the pytest fixtures do):

    b = Backend("production").start()
    ... b.url, b.port, b.requests, b.wait_for_requests(3) ...
    b.stop()

As a script:

    python3 backends.py --port 9001 --name production [--variant newdb]

Routes:
    /echo                  JSON of method, target, headers, body
    /text/<n>              n lines of text
    /binary[/<n>]          bytes 0..255 repeated (default 16 KiB)
    /chunked               a Transfer-Encoding: chunked response
    /big/<bytes>           a text body of exactly <bytes> bytes
    /slow/<ms>             waits <ms> milliseconds, then a short text
    /drip/<pieces>/<ms>    Content-Length body sent in pieces, <ms> apart
    /status/<code>         that status with a short body (none for 204/304)
    /headers               unusual but legal header spellings, odd reason
    /diff                  a body that differs when variant is not default
    /eof                   a close-delimited body (no length, no chunking)
    /closing               a normal response, then the connection is closed
    /conflicting-length    two different Content-Length fields (invalid)

Routes for the comparison tests (a non-default variant is "the shadow"; see
the comparison helpers below for the exact documents):
    /api/<anything>        a JSON document with noisy fields (see api_doc);
                           fail=1: a non-default variant answers 503
    /users/<anything>      a small JSON document naming the path
    /page[/<anything>]     an HTML page with a per-response CSRF token
    /form.txt              a text/plain form with a per-response CSRF token
    /enc/<anything>        a text body, Content-Encoding chosen by the query
    /chunky                chunked from the default variant, sized otherwise
    /bin                   a binary body (one byte differs with real=1)
    /hdr                   header fields that are noise, plus real ones
    /slowpage/<ms>         a non-default variant waits <ms> before answering

A request with "Expect: 100-continue" and a body gets "100 Continue" before
its body is read.

Faults (the `fault` attribute; may be changed while running, except refuse):
    refuse          never listen: the port is free and nobody binds it
    stall           accept, then never read nor answer (until stop())
    hang            read the request, never answer (until stop())
    reset           read the request, then reset the connection (RST)
    reset_mid_body  send the head and half the body, then reset
    garbage         answer with bytes that are not HTTP, then close
    close           close the connection without answering
    short_body      declare a Content-Length larger than sent, then close
"""

import argparse
import gzip
import hashlib
import http
import json
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field

COMPARE_ROUTES = ("api", "users", "page", "form.txt", "enc", "chunky",
                  "bin", "hdr", "slowpage", "precise")
FAULTS = ("refuse", "stall", "hang", "reset", "reset_mid_body", "garbage",
          "close", "short_body")
DEFAULT_VARIANTS = (None, "", "default", "production")
MAX_HEAD = 1 << 20


_handed_out = set()


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (bound to 0, then released),
    and never one this process handed out before: the kernel may give a
    released port to the next bind(0), and two servers a test meant to be
    apart would then share it (or the second would fail to bind)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def text_body(n):
    """The body of /text/<n>: n numbered lines."""
    return b"".join(b"%05d the quick brown fox jumps over the lazy dog\n" % i
                    for i in range(1, n + 1))


def binary_body(n=16384):
    """The body of /binary/<n>: bytes 0..255 repeated to n bytes."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def big_body(n):
    """The body of /big/<n>: numbered 32-byte lines, cut to exactly n bytes."""
    lines = n // 32 + 1
    out = b"".join(b"big body line number %010d\n" % i for i in range(lines))
    return out[:n]


CHUNKS = [b"alpha\n", b"b" * 3000 + b"\n", b"gamma\n", bytes(range(256)),
          b"last line\n"]


def chunked_body():
    """The de-chunked content of /chunked."""
    return b"".join(CHUNKS)


def diff_body(variant):
    """The body of /diff: one line depends on the variant."""
    middle = b"price: 12.50\n" if variant in DEFAULT_VARIANTS else \
        b"price: 12.49\n"
    return b"header line\nitem: teapot\n" + middle + b"footer line\n"


# --- comparison routes ------------------------------------------------------
# Queries: real=1 makes a non-default variant differ in one real value;
# shuffle=1 makes it differ only in ways that must not count (key order,
# 1 vs 1.0, array order); quiet=1 turns the per-response noise off.
def query_flags(target):
    """The query of `target` as a dict of last values."""
    q = target.partition("?")[2]
    return {k: v[-1] for k, v in urllib.parse.parse_qs(q).items()}


def is_default(variant):
    return variant in DEFAULT_VARIANTS


def noise_token():
    """A value that differs on every response."""
    return secrets.token_hex(12)


API_PRICE = 120
API_REAL_PRICE = 125


def api_doc(variant, ident, flags):
    """The JSON text of /api/...: price is the real field; meta.ts,
    meta.request_id and items[*].updated_at are noise (random per response
    unless quiet=1); with shuffle=1 a non-default variant writes keys in
    reverse order, count as 1.0 and tags reversed; with schema=1 it adds
    $.discount, drops $.name and makes $.count a string; broken=1 makes
    the body invalid JSON on every variant."""
    quiet = flags.get("quiet") == "1"
    shadow = not is_default(variant)

    def noisy(fixed):
        return fixed if quiet else noise_token()

    price = API_REAL_PRICE if shadow and flags.get("real") == "1" \
        else API_PRICE
    shuffle = shadow and flags.get("shuffle") == "1"
    tags = ["red", "green", "blue"]
    doc = {"id": ident, "name": "teapot", "price": price,
           "count": 1.0 if shuffle else 1,
           "tags": tags[::-1] if shuffle else tags,
           "items": [{"sku": "a1", "updated_at": noisy("t1")},
                     {"sku": "b2", "updated_at": noisy("t2")}],
           "meta": {"ts": noisy("ts"), "request_id": noisy("rid")}}
    if shadow and flags.get("schema") == "1":
        doc["discount"] = 5          # added key
        del doc["name"]              # removed key
        doc["count"] = "1"           # type change
    if shuffle:
        doc = dict(reversed(list(doc.items())))
        doc["meta"] = dict(reversed(list(doc["meta"].items())))
    if flags.get("broken") == "1":   # not JSON at all, whatever it says
        return b"oops {not json\nprice %d\n" % price
    return json.dumps(doc).encode()


PAGE_PRICE_XPATH = "/html/body/div[2]/p[2]/text()"
PAGE_TOKEN_XPATH = "/html/body/div[2]/form/input[1]/@value"


def page_body(variant, flags):
    """The HTML of /page: the hidden authenticity_token is random per
    response (unless quiet=1); the price in the second <p> of the second
    <div> is the real field. A non-default variant spells the same document
    differently: attribute order, whitespace, entity spelling, comments,
    unless same=1 (one template, as two builds of one app render it).
    With notags=1 the "page" has no tag at all (not HTML). With nul=1 a NUL
    byte sits in an attribute value before the content, past the first
    1445 bytes: libxml2 2.9 stops reading the page there."""
    if flags.get("notags") == "1":
        real = not is_default(variant) and flags.get("real") == "1"
        return b"maintenance\nprice %d\nback soon\n" % (
            API_REAL_PRICE if real else API_PRICE)
    token = "fixed-token" if flags.get("quiet") == "1" else noise_token()
    shadow = not is_default(variant)
    price = API_REAL_PRICE if shadow and flags.get("real") == "1" \
        else API_PRICE
    if not shadow or flags.get("same") == "1":
        html = ('<!DOCTYPE html>\n<html><head><title>Shop</title></head>'
                '<body>\n<div id="nav"><a href="/" class="home">Home</a>'
                '</div>\n<div class="content"><p>Tea &amp; cakes</p>'
                '<p>Price: %d</p>\n<form action="/buy" method="post">'
                '<input type="hidden" name="authenticity_token" value="%s">'
                '<input name="q" type="text"></form></div>\n</body></html>\n'
                % (price, token))
    else:
        html = ('<!DOCTYPE html>\n<html>\n  <head>\n    <title>Shop</title>'
                '\n  </head>\n  <body>\n    <!-- rendered by newdb -->\n'
                '    <div id="nav">\n      <a class="home" href="/">Home</a>'
                '\n    </div>\n    <div class="content">\n'
                '      <p>Tea &#38; cakes</p>\n      <p>Price:   %d</p>\n'
                '      <form method="post" action="/buy">\n'
                '        <input value="%s" name="authenticity_token" '
                'type="hidden">\n        <input type="text" name="q">\n'
                '      </form>\n    </div>\n  </body>\n</html>\n'
                % (price, token))
    if flags.get("nul") == "1":
        html = html.replace('<div class="content">',
                            '<div class="pad">%s</div><div data-x="5\0">x</div>\n'
                            '<div class="content">' % ("tea " * 400), 1)
    return html.encode()


def form_text(variant, flags):
    """The text/plain body of /form.txt: line 2 carries a random CSRF
    token (hex; only digits with digits=1), line 4 is the real field
    (differs in a non-default variant with real=1)."""
    if flags.get("quiet") == "1":
        token = "fixed"
    elif flags.get("digits") == "1":
        token = str(secrets.randbelow(10 ** 12) + 10 ** 12)
    else:
        token = noise_token()
    real = not is_default(variant) and flags.get("real") == "1"
    return ('<form action="/buy">\n'
            '<input type="hidden" name="csrf_token" value="%s">\n'
            '<input name="q">\n'
            'total: %s\n'
            '</form>\n' % (token, "125" if real else "120")).encode()


ENC_LINES = 40
ENC_REAL_LINE = 20


def enc_plain(variant, flags):
    """The decoded content of /enc: text_body(40), line 20 changed in a
    non-default variant with real=1."""
    lines = text_body(ENC_LINES).split(b"\n")
    if not is_default(variant) and flags.get("real") == "1":
        lines[ENC_REAL_LINE - 1] = b"%05d the quick brown fox jumps over the " \
            b"lazy cat" % ENC_REAL_LINE
    return b"\n".join(lines)


BOMB_BYTES = 64 << 20  # decoded size of the gzip bomb
_bomb = []


def gzip_bomb():
    """gzip of 64 MiB of zeros (about 64 KiB on the wire), built once."""
    if not _bomb:
        z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        chunk = b"\0" * (1 << 20)
        out = [z.compress(chunk) for _ in range(BOMB_BYTES >> 20)]
        out.append(z.flush())
        _bomb.append(b"".join(out))
    return _bomb[0]


def encode_body(mode, body):
    """(Content-Encoding value or None, bytes on the wire) for /enc modes:
    identity, gzip, deflate (zlib), rawdeflate, badgzip, bomb."""
    if mode == "gzip":
        return "gzip", gzip.compress(body)
    if mode == "deflate":
        return "deflate", zlib.compress(body)
    if mode == "rawdeflate":
        z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return "deflate", z.compress(body) + z.flush()
    if mode == "badgzip":
        return "gzip", b"\x1f\x8b\x08\x00 certainly not deflate data \xff" * 4
    if mode == "bomb":
        return "gzip", gzip_bomb()
    return None, body


def bin_body(variant, flags):
    """The body of /bin: 4 KiB with NUL bytes; byte 1000 flipped in a
    non-default variant with real=1."""
    body = bytearray(binary_body(4096))
    if not is_default(variant) and flags.get("real") == "1":
        body[1000] ^= 0xff
    return bytes(body)


PRECISE_KINDS = ("array", "object", "ids", "html", "text", "headers")
MANY_ROWS = 150  # /precise/many: more noisy locations than a result stores (100)


def precise_reply(kind, variant, flags):
    """(content type, extra header fields, body) of /precise/<kind>: noise
    that differs on every response right next to a real field, which is 1
    everywhere but 2 in a non-default variant with real=1. The noise shares
    the real field's array, object, element list, line shape or field
    name, so learning it must not hide the real field (issue 12)."""
    v = 2 if not is_default(variant) and flags.get("real") == "1" else 1
    noise = noise_token()
    if kind == "array":
        return "application/json", [], json.dumps(
            {"rows": [{"n": noise}, {"n": v}]}).encode()
    if kind == "object":
        return "application/json", [], json.dumps({"a": noise, "b": v}).encode()
    if kind == "ids":  # every row's id is noise; row 1's v is the real field
        rows = [{"id": noise_token(), "v": v if i == 1 else 1} for i in range(3)]
        return "application/json", [], json.dumps({"rows": rows}).encode()
    if kind == "many":  # every row's id is noise, row 120's v is the real field
        rows = [{"id": noise_token(), "v": v if i == 120 else 1} for i in range(MANY_ROWS)]
        return "application/json", [], json.dumps({"rows": rows}).encode()
    if kind == "html":
        return "text/html", [], ("<!DOCTYPE html><html><body><p>%s</p>"
                                 "<p>v%d</p></body></html>" % (noise, v)).encode()
    if kind == "text":  # two lines of one shape: <td>digits</td>
        return "text/plain", [], ("<td>%d</td>\n<td>%d</td>\n" % (
            secrets.randbelow(10 ** 9) + 10 ** 9, 5 + v)).encode()
    if kind == "headers":  # a repeated field: noise first, the real one second
        return "text/plain", [("X-Item", noise), ("X-Item", "v%d" % v)], b"same\n"
    raise ValueError(kind)


def hdr_fields(name, variant, flags):
    """Header fields of /hdr. Date, Server, ETag, X-Request-Id and the
    Set-Cookie value differ between any two backends (noise by default);
    with real=1 a non-default variant changes Cache-Control and drops
    X-Feature."""
    real = not is_default(variant) and flags.get("real") == "1"
    day = 1 + len(name) % 28
    fields = [("Content-Type", "text/plain"),
              ("Date", "Mon, %02d Jan 2024 00:00:00 GMT" % day),
              ("Server", "%s/1.%d" % (name, len(name))),
              ("ETag", '"%s"' % noise_token()),
              ("X-Request-Id", noise_token()),
              ("Set-Cookie", "session=%s; Path=/" % noise_token()),
              ("Cache-Control", "max-age=0" if real else "max-age=60")]
    if not real:
        fields.append(("X-Feature", "on"))
    return fields


@dataclass
class Received:
    """One request as a backend received it."""
    method: str
    target: str
    version: str
    headers: list            # [(name, value)] in order, original spelling
    body: bytes              # de-chunked
    chunked: bool            # the body arrived with chunked framing
    client_port: int         # peer port: same port = same connection
    conn_id: int
    at: float = field(default_factory=time.monotonic)
    response: bytes = b""    # exactly what this backend sent back

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    def header(self, name):
        """First value of `name` (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Reply:
    """What a route answers. mode: length | chunked | eof | drip | closing |
    raw (headers exactly as given, no framing added)."""
    status: int
    reason: str
    headers: list
    body: bytes = b""
    mode: str = "length"
    pieces: list = None      # chunked / drip: the pieces in order
    delay: float = 0.0       # drip: seconds between pieces


class _Reader:
    """Buffered reads from a socket; returns None on a clean EOF."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def until(self, delim, limit):
        while delim not in self.buf:
            if len(self.buf) > limit or not self._fill():
                return None
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class ProtocolError(Exception):
    pass


class Backend:
    """One test backend: a listening socket and a thread per connection."""

    def __init__(self, name="production", variant=None, fault=None,
                 host="127.0.0.1", port=0, delay=0.0, verbose=False,
                 unix_path=None):
        if fault is not None and fault not in FAULTS:
            raise ValueError("unknown fault %r" % fault)
        self.name = name
        self.variant = variant
        self.fault = fault
        self.delay = delay            # extra seconds before every answer
        self.host = host
        self.port = port
        self.unix_path = unix_path    # listen on this Unix socket instead
        self.verbose = verbose
        self.requests = []            # [Received], in arrival order
        self.protocol_errors = []     # malformed input the proxy sent us
        self.connections = 0          # connections accepted so far
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._listener = None
        self._socks = set()
        self._threads = []

    # --- lifecycle -------------------------------------------------------
    @property
    def url(self):
        if self.unix_path:
            return "unix:%s" % self.unix_path
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        if self.fault == "refuse":  # unix: nothing at the path
            if not self.port and not self.unix_path:
                self.port = free_port(self.host)
            return self
        if self.unix_path:
            ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ls.bind(self.unix_path)
        else:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((self.host, self.port))
        ls.listen(128)
        if not self.unix_path:
            self.port = ls.getsockname()[1]
        self._listener = ls
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name="backend-%s-accept" % self.name)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        self.drop_connections()
        for t in list(self._threads):
            t.join(timeout=5)

    def drop_connections(self):
        """Closes every open connection from the server side (FIN)."""
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- what tests read -------------------------------------------------
    def received(self, path=None):
        """A snapshot of the requests received, optionally for one path."""
        with self.lock:
            reqs = list(self.requests)
        if path is not None:
            reqs = [r for r in reqs if r.path == path]
        return reqs

    def wait_for_requests(self, count, path=None, timeout=5.0):
        """Waits until at least `count` requests (for `path`) arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                reqs = [r for r in self.requests
                        if path is None or r.path == path]
                if len(reqs) >= count:
                    return reqs
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "backend %s: %d request(s) for %s after %.1fs, "
                        "wanted %d" % (self.name, len(reqs), path or "any",
                                       timeout, count))
                self._changed.wait(left)

    def client_ports(self):
        return {r.client_port for r in self.received()}

    # --- serving ---------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                sock, addr = self._listener.accept()
            except OSError:
                return
            if not self.unix_path:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                addr = ("unix", 0)  # no peer port: conn_id tells connections
            with self.lock:
                self.connections += 1
                conn_id = self.connections
                self._socks.add(sock)
            t = threading.Thread(target=self._serve, args=(sock, addr, conn_id),
                                 daemon=True,
                                 name="backend-%s-conn%d" % (self.name, conn_id))
            t.start()
            self._threads.append(t)

    def _serve(self, sock, addr, conn_id):
        reader = _Reader(sock)
        try:
            if self.fault == "stall":
                self._stop.wait()
                return
            while not self._stop.is_set():
                try:
                    req = self._read_request(reader, addr[1], conn_id)
                except ProtocolError as e:
                    with self.lock:
                        self.protocol_errors.append(str(e))
                    sock.sendall(b"HTTP/1.1 400 Bad Request\r\n"
                                 b"Content-Length: 0\r\nConnection: close"
                                 b"\r\n\r\n")
                    return
                if req is None:
                    return
                if self.verbose:
                    print("%s: %s %s" % (self.name, req.method, req.target),
                          flush=True)
                if not self._answer(sock, req):
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self._socks.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, reader, port, conn_id):
        head = reader.until(b"\r\n\r\n", MAX_HEAD)
        if head is None:
            if reader.buf:
                raise ProtocolError("incomplete request head %r"
                                    % reader.buf[:200])
            return None
        return self._parse_request(reader, head, port, conn_id)

    def _parse_request(self, reader, head, port, conn_id):
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ProtocolError("bad request line %r" % lines[0])
        method, target, version = parts
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise ProtocolError("bad header line %r" % line)
            headers.append((name, value.strip(" \t")))
        lower = [(k.lower(), v) for k, v in headers]
        te = [v.lower() for k, v in lower if k == "transfer-encoding"]
        cl = [v for k, v in lower if k == "content-length"]
        chunked = bool(te) and te[-1].split(",")[-1].strip() == "chunked"
        if te and cl:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        expect = [v.lower() for k, v in lower if k == "expect"]
        if "100-continue" in expect and (chunked or (cl and cl[0] != "0")):
            reader.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            body = self._read_chunked(reader)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ProtocolError("bad Content-Length %r" % cl)
            body = reader.exact(int(cl[0]))
            if body is None:
                raise ProtocolError("body shorter than Content-Length")
        else:
            body = b""
        req = Received(method, target, version, headers, body, chunked, port,
                       conn_id)
        with self._changed:
            self.requests.append(req)
            self._changed.notify_all()
        return req

    @staticmethod
    def _read_chunked(reader):
        body = b""
        while True:
            line = reader.until(b"\r\n", 4096)
            if line is None:
                raise ProtocolError("bad chunk size line")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ProtocolError("bad chunk size %r" % line)
            if size == 0:
                break
            data = reader.exact(size + 2)
            if data is None or data[-2:] != b"\r\n":
                raise ProtocolError("bad chunk data")
            body += data[:-2]
        while True:  # trailer fields, up to the empty line
            line = reader.until(b"\r\n", 65536)
            if line is None:
                raise ProtocolError("bad chunked trailer")
            if line == b"\r\n":
                return body

    # --- answering -------------------------------------------------------
    @staticmethod
    def _keep_alive(req):
        tokens = {t.strip().lower() for v in req.header_all("Connection")
                  for t in v.split(",")}
        if req.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def _answer(self, sock, req):
        """Writes the answer. Returns whether the connection stays open."""
        fault = self.fault
        if fault == "hang":
            self._stop.wait()
            return False
        if fault == "reset":
            self._reset(sock)
            return False
        if fault == "close":
            return False
        if fault == "garbage":
            sock.sendall(b"\x00\x01\x02 this is not HTTP at all \xff\xfe\r\n"
                         b"\r\n")
            return False
        if self.delay:
            time.sleep(self.delay)
        reply = self.route(req)
        keep = self._keep_alive(req) and reply.mode not in ("eof", "closing")
        head, body = self._serialize(req, reply, keep)
        if fault == "reset_mid_body":
            req.response = head + body[:len(body) // 2]
            sock.sendall(req.response)
            time.sleep(0.05)
            self._reset(sock)
            return False
        if fault == "short_body":
            head = head.replace(b"Content-Length: %d\r\n" % len(body),
                                b"Content-Length: %d\r\n" % (len(body) + 1000))
            req.response = head + body
            sock.sendall(req.response)
            return False
        if reply.mode == "drip":
            req.response = head + body
            sock.sendall(head)
            for i, piece in enumerate(reply.pieces):
                if i:
                    time.sleep(reply.delay)
                sock.sendall(piece)
            return keep
        req.response = head + body
        sock.sendall(req.response)
        return keep

    @staticmethod
    def _reset(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        sock.close()

    @staticmethod
    def _serialize(req, reply, keep):
        headers = list(reply.headers)
        if reply.mode == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
            body = b"".join(b"%X\r\n%s\r\n" % (len(p), p)
                            for p in reply.pieces) + b"0\r\n\r\n"
        elif reply.mode == "drip":
            body = b"".join(reply.pieces)
            headers.append(("Content-Length", str(len(body))))
        elif reply.mode in ("eof", "raw"):
            body = reply.body
        else:
            body = reply.body
            if reply.status not in (204, 304) and reply.status >= 200:
                headers.append(("Content-Length", str(len(body))))
        if not keep:
            headers.append(("Connection", "close"))
        elif req.version == "HTTP/1.0":
            headers.append(("Connection", "keep-alive"))
        head = "HTTP/1.1 %d %s\r\n" % (reply.status, reply.reason)
        head += "".join("%s: %s\r\n" % (k, v) if v else "%s:\r\n" % k
                        for k, v in headers)
        head = (head + "\r\n").encode("latin-1")
        if req.method == "HEAD" or reply.status in (204, 304):
            body = b""
        return head, body

    def route(self, req):
        """Maps a request to a Reply. Subclass or replace to add routes."""
        parts = req.path.strip("/").split("/")
        name, args = parts[0], parts[1:]
        plain = [("Content-Type", "text/plain; charset=utf-8"),
                 ("X-Backend", self.name)]
        try:
            if name == "echo":
                doc = {"backend": self.name, "method": req.method,
                       "target": req.target, "path": req.path,
                       "version": req.version,
                       "headers": [[k, v] for k, v in req.headers],
                       "body": req.body.decode("latin-1"),
                       "body_len": len(req.body), "chunked": req.chunked}
                return Reply(200, "OK", [("Content-Type", "application/json")],
                             json.dumps(doc).encode())
            if name == "text":
                return Reply(200, "OK", plain, text_body(int(args[0])))
            if name == "binary":
                n = int(args[0]) if args else 16384
                return Reply(200, "OK",
                             [("Content-Type", "application/octet-stream")],
                             binary_body(n))
            if name == "chunked":
                return Reply(200, "OK", plain, mode="chunked",
                             pieces=list(CHUNKS))
            if name == "big":
                return Reply(200, "OK", plain, big_body(int(args[0])))
            if name == "bighead":  # a response head of about args[0] KiB
                pad = "x" * 1000
                fields = plain + [("X-Pad-%d" % i, pad)
                                  for i in range(int(args[0]))]
                return Reply(200, "OK", fields, b"big head\n")
            if name == "slow":
                time.sleep(int(args[0]) / 1000.0)
                return Reply(200, "OK", plain, b"slow %s\n" % args[0].encode())
            if name == "drip":
                n, ms = int(args[0]), int(args[1])
                pieces = [b"piece %04d of the dripping body\n" % i
                          for i in range(n)]
                return Reply(200, "OK", plain, mode="drip", pieces=pieces,
                             delay=ms / 1000.0)
            if name == "status":
                code = int(args[0])
                try:
                    reason = http.HTTPStatus(code).phrase
                except ValueError:
                    reason = "Custom Status"
                return Reply(code, reason, plain, b"status %d\n" % code)
            if name == "headers":
                return Reply(200, "Fine Thanks", [
                    ("Content-Type", "text/plain"),
                    ("X-Odd-Case", "v"),
                    ("x-all-lower", "lower"),
                    ("X-ALL-UPPER", "UPPER"),
                    ("Set-Cookie", "a=1; Path=/"),
                    ("Set-Cookie", "b=2; HttpOnly"),
                    ("X-Empty", ""),
                    ("X-Spaces", "a,  b,   c"),
                    ("X-Tab", "a\tb"),
                    ("Cache-Control", "no-cache"),
                    ("X-Repeat", "1"),
                    ("x-repeat", "2"),
                ], b"headers\n")
            if name == "diff":
                return Reply(200, "OK", plain, diff_body(self.variant))
            if name == "eof":
                return Reply(200, "OK", plain, text_body(50), mode="eof")
            if name == "conflicting-length":
                return Reply(200, "OK", plain + [("Content-Length", "5"),
                                                 ("Content-Length", "6")],
                             b"hello!", mode="raw")
            if name == "closing":
                return Reply(200, "OK", plain, b"closing\n", mode="closing")
            if name in COMPARE_ROUTES:
                return self._compare_route(name, args, req)
            if name == "":
                return Reply(200, "OK", plain, b"ok %s\n" % self.name.encode())
        except (IndexError, ValueError):
            return Reply(400, "Bad Request", plain, b"bad route arguments\n")
        return Reply(404, "Not Found", plain, b"no route %s\n"
                     % req.path.encode("latin-1"))


    def _compare_route(self, name, args, req):
        """The routes of the comparison tests (see the module docstring)."""
        flags = query_flags(req.target)
        variant = self.variant
        if name == "api":
            ctype = flags.get("ct", "application/json")
            fail = not is_default(variant) and flags.get("fail") == "1"
            return Reply(503 if fail else 200,
                         "Service Unavailable" if fail else "OK",
                         [("Content-Type", ctype)],
                         api_doc(variant, args[-1] if args else "", flags))
        if name == "users":
            doc = {"path": req.path, "kind": "user"}
            return Reply(200, "OK", [("Content-Type", "application/json")],
                         json.dumps(doc).encode())
        if name == "page":
            return Reply(200, "OK",
                         [("Content-Type", "text/html; charset=utf-8")],
                         page_body(variant, flags))
        if name == "form.txt":
            return Reply(200, "OK", [("Content-Type", "text/plain")],
                         form_text(variant, flags))
        if name == "enc":
            mode = flags.get("m" if is_default(variant) else "s", "identity")
            coding, body = encode_body(mode, enc_plain(variant, flags))
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            if coding:
                headers.append(("Content-Encoding", coding))
            return Reply(200, "OK", headers, body)
        if name == "chunky":
            body = text_body(30)
            headers = [("Content-Type", "text/plain")]
            if is_default(variant):
                return Reply(200, "OK", headers, mode="chunked",
                             pieces=[body[:100], body[100:700], body[700:]])
            return Reply(200, "OK", headers, body)
        if name == "bin":
            headers = [] if flags.get("noct") == "1" else \
                [("Content-Type", "application/octet-stream")]
            return Reply(200, "OK", headers, bin_body(variant, flags))
        if name == "hdr":
            return Reply(200, "OK", hdr_fields(self.name, variant, flags),
                         b"same body\n")
        if name == "precise":
            ctype, extra, body = precise_reply(args[0], variant, flags)
            return Reply(200, "OK", [("Content-Type", ctype)] + extra, body)
        if name == "slowpage":
            if not is_default(variant):
                time.sleep(int(args[0]) / 1000.0)
            return Reply(200, "OK", [("Content-Type", "text/plain")],
                         b"slow page\n")
        raise ValueError(name)

# --- per-request fault injection (tests/integration/test_fault_injection.py,
# tests/soak/soak.py) ---------------------------------------------------------
# FaultyBackend answers like Backend, but the fault is chosen per request by
# `choose(req)` (None: no fault), so one backend can mix faults
# deterministically. It knows every fault above (except the connection-level
# "refuse" and "stall", which stay per backend) plus these:
#     hold               read the request, never answer; returns when the peer
#                        closes (unlike "hang", which waits for stop())
#     reset_mid_headers  send part of the head, then reset (RST)
#     trickle            the normal answer a few bytes at a time
#     interim            "100 Continue" and "103 Early Hints" before the answer
# ("short_body" is the wrong, larger Content-Length followed by a close.)
EXTRA_FAULTS = ("hold", "reset_mid_headers", "trickle", "interim")
# Faults a shadow must survive without the client noticing; a master turns
# each into 502/504 or a cut response (see FAULT_OUTCOME).
MIX_FAULTS = (None, "hold", "reset", "reset_mid_headers", "reset_mid_body",
              "short_body", "garbage", "trickle", "close", "interim")
# What a client sees when the master has the fault: a status kagami answers
# itself, "cut" (the head was relayed, then the connection closed), or the
# backend's own 200.
FAULT_OUTCOME = {None: 200, "hold": 504, "hang": 504, "reset": 502,
                 "reset_mid_headers": 502, "garbage": 502, "close": 502,
                 "reset_mid_body": "cut", "short_body": "cut",
                 "trickle": 200, "interim": 200}
# Faults after which the backend's leg is an error (the rest answer fine).
ERROR_FAULTS = frozenset(f for f, o in FAULT_OUTCOME.items() if o != 200)
_UNSET = object()


def seeded_chooser(seed, faults=MIX_FAULTS, key=None):
    """choose(req) picking a fault from `faults` by a hash of the seed and
    `key(req)` (default: the request target): deterministic, so a test can
    compute what each request met with `fault_for(seed, target, faults)`."""
    key = key or (lambda req: req.target)
    return lambda req: fault_for(seed, key(req), faults)


def fault_for(seed, key, faults=MIX_FAULTS):
    digest = hashlib.sha256(("%s|%s" % (seed, key)).encode()).digest()
    return faults[int.from_bytes(digest[:4], "big") % len(faults)]


def header_chooser(name="X-Fault"):
    """choose(req) reading the fault from a request header (absent: none)."""
    return lambda req: req.header(name) or None


class FaultyBackend(Backend):
    """A Backend whose fault is chosen per request (see above)."""

    def __init__(self, name="production", choose=None, fault=None,
                 trickle_piece=32, trickle_delay=0.001, **kw):
        self._local = threading.local()
        super().__init__(name, fault=fault if fault in FAULTS else None, **kw)
        self._fault = fault
        self.choose = choose
        self.trickle_piece = trickle_piece
        self.trickle_delay = trickle_delay
        self.faults_served = {}       # fault -> number of answers

    # The base class reads self.fault; while answering one request it must
    # see that request's fault, not another connection's.
    def start(self):
        super().start()
        if self._listener is not None:
            # Most faults cost a connection: a deep accept queue keeps a
            # burst of reconnects from being dropped (and retried by the
            # kernel a second later, which would look like a slow backend).
            self._listener.listen(4096)
        return self

    @property
    def fault(self):
        f = getattr(self._local, "fault", _UNSET)
        return self._fault if f is _UNSET else f

    @fault.setter
    def fault(self, value):
        self._fault = value

    def _answer(self, sock, req):
        fault = self.choose(req) if self.choose else self._fault
        with self.lock:
            self.faults_served[fault] = self.faults_served.get(fault, 0) + 1
        self._local.fault = fault
        try:
            if fault == "hold":
                self._hold(sock)
                return False
            if fault == "reset_mid_headers":
                req.response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")
                sock.sendall(req.response)
                time.sleep(0.02)
                self._reset(sock)
                return False
            if fault == "interim":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                             b"HTTP/1.1 103 Early Hints\r\n"
                             b"Link: </style.css>; rel=preload; as=style\r\n"
                             b"\r\n")
                self._local.fault = None
                return Backend._answer(self, sock, req)
            if fault == "trickle":
                return self._trickle(sock, req)
            if fault in ("refuse", "stall"):   # connection-level only
                self._local.fault = None
            return Backend._answer(self, sock, req)
        finally:
            self._local.fault = _UNSET

    def _hold(self, sock):
        """Never answers; returns when the peer closes or on stop()."""
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _trickle(self, sock, req):
        reply = self.route(req)
        keep = self._keep_alive(req) and reply.mode not in ("eof", "closing")
        head, body = self._serialize(req, reply, keep)
        req.response = data = head + body
        for i in range(0, len(data), self.trickle_piece):
            sock.sendall(data[i:i + self.trickle_piece])
            time.sleep(self.trickle_delay)
        return keep


def main(argv=None):
    ap = argparse.ArgumentParser(description="kagami test backend")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="production")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--fault", choices=FAULTS, default=None)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    b = Backend(args.name, variant=args.variant, fault=args.fault,
                host=args.host, port=args.port, verbose=True).start()
    print("backend %s listening on %s" % (args.name, b.url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
