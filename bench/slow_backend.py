#!/usr/bin/python3
"""A deliberately slow HTTP/1.1 backend for bench/run.py's fault scenario.

Serves the files of one directory (GET/HEAD, keep-alive, pipelining) and
answers every request only after DELAY seconds. Built on asyncio protocols
(no streams, one timer per batch of requests received together) so that a
thousand connections each waiting a second cost little CPU: the point of the
scenario is kagami's behaviour, not this server's.

usage: slow_backend.py PORT DOCROOT DELAY_SECONDS
Listens on 127.0.0.1 only; stops on SIGTERM/SIGINT.
"""
import asyncio
import os
import resource
import signal
import sys


def load_pages(root):
    pages = {}
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                pages["/" + name] = f.read()
    return pages


def response(pages, head):
    line = head.split(b"\r\n", 1)[0].split(b" ")
    method = line[0] if line else b""
    path = line[1].split(b"?", 1)[0].decode("latin-1") if len(line) > 1 else "/"
    body = pages.get(path)
    status = b"200 OK"
    if body is None:
        status, body = b"404 Not Found", b"not found\n"
    # The fields nginx sends for a static file, less those kagami ignores by
    # default (Date, Server, ETag, Last-Modified), so that a late answer
    # compares equal: the scenario is about time, not content.
    hdr = (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n"
           b"Accept-Ranges: bytes\r\n\r\n")
    return hdr if method == b"HEAD" else hdr + body


class Slow(asyncio.Protocol):
    def __init__(self, pages, delay):
        self.pages, self.delay = pages, delay
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            # Requests from the bench carry no body; one with a
            # Content-Length would need it skipped, which we do crudely.
            for ln in head.split(b"\r\n")[1:]:
                k, _, v = ln.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v.strip() or 0)
                    self.buf = self.buf[n:]
            out.append(response(self.pages, head))
        if out:
            asyncio.get_running_loop().call_later(self.delay, self.send, b"".join(out))

    def send(self, data):
        if not self.transport.is_closing():
            self.transport.write(data)


async def main():
    port, root, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pages = load_pages(root)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Slow(pages, delay), "127.0.0.1", port,
                                      backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
