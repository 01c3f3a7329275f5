"""A minimal HTTP/1.x client on raw sockets, for byte-exact checks.

It sends exactly the bytes a test gives it and parses responses itself
(status line, headers in order with original spelling, and a body framed by
Content-Length, chunked encoding or the connection closing), so tests see
what the proxy really put on the wire. Every socket operation has a timeout.
"""

import socket
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0

# RFC 9110 7.6.1: connection-specific fields a proxy removes or replaces.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-authenticate",
              "proxy-authorization"}


class IncompleteResponse(Exception):
    """The connection ended (or timed out) before a full response."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


@dataclass
class Response:
    version: str
    status: int
    reason: str
    status_line: bytes
    headers: list        # [(name, value)] in order, original spelling
    body: bytes          # de-chunked
    chunked: bool
    raw: bytes           # every byte of this response as received

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def connection_tokens(self):
        return {t.strip().lower() for v in self.header_all("Connection")
                for t in v.split(",") if t.strip()}


def end_to_end(headers):
    """The header list without hop-by-hop fields (also those named in
    Connection), keeping order and spelling."""
    named = {t.strip().lower() for k, v in headers if k.lower() == "connection"
             for t in v.split(",")}
    return [(k, v) for k, v in headers
            if k.lower() not in HOP_BY_HOP and k.lower() not in named]


def build_request(method, target, headers=None, body=None,
                  version="HTTP/1.1", host="127.0.0.1"):
    """Request bytes. Adds Host (unless given or HTTP/1.0) and, for a bytes
    body without Transfer-Encoding, Content-Length. A body that is already
    chunk-encoded must come with its own Transfer-Encoding header."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names and version != "HTTP/1.0":
        headers.insert(0, ("Host", host))
    if body is not None and "transfer-encoding" not in names \
            and "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def chunk_encode(pieces, trailer=b""):
    """Chunked framing of `pieces` (bytes each)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) \
        + b"0\r\n" + trailer + b"\r\n"


def parse_head(head):
    """(version, status, reason, status_line, headers) of a response head
    (bytes up to and including the blank line)."""
    lines = head.split(b"\r\n")
    status_line = lines[0]
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") \
            or not parts[1].isdigit():
        raise ValueError("bad status line %r" % status_line)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError("bad header line %r" % line)
        headers.append((name, value.strip(" \t")))
    reason = parts[2] if len(parts) > 2 else ""
    return parts[0], int(parts[1]), reason, status_line, headers


class Reader:
    """Buffered socket reads that remember every byte taken (for .raw)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.taken = b""
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise IncompleteResponse("timed out waiting for data",
                                     self.taken + self.buf)
        except ConnectionResetError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        self.taken += out
        return out

    def until(self, delim, limit=1 << 20):
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise IncompleteResponse("no %r within %d bytes"
                                         % (delim, limit), self.buf)
            if not self._fill():
                raise IncompleteResponse("connection closed before %r"
                                         % delim, self.taken + self.buf)
        return self._take(self.buf.index(delim) + len(delim))

    def exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse(
                    "connection closed after %d of %d bytes"
                    % (len(self.buf), n), self.taken + self.buf)
        return self._take(n)

    def rest(self):
        while self._fill():
            pass
        return self._take(len(self.buf))


def read_response(reader, method="GET"):
    """Reads one response from `reader` (a Reader). Skips 1xx responses."""
    while True:
        reader.taken = b""
        head = reader.until(b"\r\n\r\n")
        version, status, reason, status_line, headers = parse_head(head)
        if 100 <= status < 200:
            continue
        break
    resp = Response(version, status, reason, status_line, headers, b"",
                    False, b"")
    te = (resp.header("Transfer-Encoding") or "").lower()
    cl = resp.header_all("Content-Length")
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif te.split(",")[-1].strip() == "chunked":
        resp.chunked = True
        body = b""
        while True:
            size = int(reader.until(b"\r\n").split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += reader.exact(size)
            if reader.exact(2) != b"\r\n":
                raise IncompleteResponse("bad chunk terminator", reader.taken)
        while reader.until(b"\r\n") != b"\r\n":  # trailer fields
            pass
    elif cl:
        if len(set(cl)) != 1:
            raise ValueError("conflicting Content-Length %r" % cl)
        body = reader.exact(int(cl[0]))
    else:
        body = reader.rest()
    resp.body = body
    resp.raw = reader.taken
    return resp


class Connection:
    """One client connection to the proxy."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        # Separate small writes must not wait for delayed ACKs (Nagle): the
        # latency measured should be the proxy's, not this client's.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = Reader(self.sock)
        self.port = port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_lenient(self, data):
        """Sends what the peer will take; stops quietly if it closes or
        resets (a server may answer and close before reading everything)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def read_response(self, method="GET"):
        return read_response(self.reader, method)

    def request(self, method, target, headers=None, body=None,
                version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))
        return self.read_response(method)

    def closed_by_peer(self, timeout=2.0):
        """True when the peer closes (or resets) within `timeout` seconds
        without sending anything more; False when it stays open."""
        if self.reader.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if data:
            self.reader.buf += data
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(port, method, target, headers=None, body=None,
            version="HTTP/1.1", timeout=DEFAULT_TIMEOUT):
    """One request on a fresh connection, which is then closed."""
    with Connection(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, version)


def timed_request(port, method, target, **kw):
    """(response, seconds) of one request on a fresh connection."""
    t0 = time.monotonic()
    resp = request(port, method, target, **kw)
    return resp, time.monotonic() - t0
