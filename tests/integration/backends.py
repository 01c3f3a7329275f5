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
import http
import json
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

FAULTS = ("refuse", "stall", "hang", "reset", "reset_mid_body", "garbage",
          "close", "short_body")
DEFAULT_VARIANTS = (None, "", "default", "production")
MAX_HEAD = 1 << 20


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
                 host="127.0.0.1", port=0, delay=0.0, verbose=False):
        if fault is not None and fault not in FAULTS:
            raise ValueError("unknown fault %r" % fault)
        self.name = name
        self.variant = variant
        self.fault = fault
        self.delay = delay            # extra seconds before every answer
        self.host = host
        self.port = port
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
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        if self.fault == "refuse":
            if not self.port:
                self.port = free_port(self.host)
            return self
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(128)
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
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
            if name == "":
                return Reply(200, "OK", plain, b"ok %s\n" % self.name.encode())
        except (IndexError, ValueError):
            return Reply(400, "Bad Request", plain, b"bad route arguments\n")
        return Reply(404, "Not Found", plain, b"no route %s\n"
                     % req.path.encode("latin-1"))


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
