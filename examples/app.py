"""A tiny shop web site, the example backend for kagami's demo.

Two variants stand for the same application on two database clusters:

    production   the current database
    newdb        the upgraded database, which differs on a few paths:
                 - product 4 costs 12.49 instead of 12.50 (a rounding change)
                 - /api/products misses product 5 (a changed collation/filter)
                 - /search is slower (the optimizer picks a worse plan)
                 - /api/names lists the same rows in another order (a
                   query without ORDER BY, planned differently)

Run one by hand:

    python3 examples/app.py --port 9001 --variant production
    python3 examples/app.py --port 9002 --variant newdb

or use serve(port, variant) from another script (examples/demo.py).
Standard library only.
"""

import argparse
import html
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PRODUCTS = [
    {"id": 1, "name": "Cast iron teapot", "price": 24.00, "stock": 12},
    {"id": 2, "name": "Porcelain cup", "price": 6.50, "stock": 140},
    {"id": 3, "name": "Electric kettle", "price": 39.90, "stock": 7},
    {"id": 4, "name": "Tea tin", "price": 12.50, "stock": 33},
    {"id": 5, "name": "Bamboo strainer", "price": 4.20, "stock": 58},
]


class Shop:
    """The application: what each path returns for a variant."""

    def __init__(self, variant="production"):
        self.variant = variant

    def products(self, api=False):
        rows = [dict(p) for p in PRODUCTS]
        if self.variant == "newdb":
            for p in rows:
                if p["id"] == 4:
                    p["price"] = 12.49
            if api:
                rows = [p for p in rows if p["id"] != 5]
        return rows

    def product(self, pid):
        for p in self.products():
            if p["id"] == pid:
                return p
        return None

    def handle(self, path, query):
        """(status, content type, body text) for a GET of path?query."""
        if path == "/":
            return 200, "text/html", page("Tea shop", [
                "<p>Welcome to the tea shop.</p>",
                '<p><a href="/products">All products</a></p>',
                '<p><a href="/about">About us</a></p>'])
        if path == "/about":
            return 200, "text/html", page("About", [
                "<p>Family business since 1987.</p>",
                "<p>Open Monday to Saturday.</p>"])
        if path == "/products":
            items = ['<li><a href="/products/%d">%s</a> %.2f EUR</li>'
                     % (p["id"], html.escape(p["name"]), p["price"])
                     for p in self.products()]
            return 200, "text/html", page("Products", ["<ul>"] + items
                                          + ["</ul>"])
        if path.startswith("/products/"):
            p = self.product(int_or_none(path.rsplit("/", 1)[1]))
            if p is None:
                return 404, "text/html", page("Not found", ["<p>No such "
                                                            "product.</p>"])
            return 200, "text/html", page(p["name"], [
                "<p>Price: %.2f EUR</p>" % p["price"],
                "<p>In stock: %d</p>" % p["stock"]])
        if path == "/search":
            q = query.get("q", [""])[0].lower()
            time.sleep(0.12 if self.variant == "newdb" else 0.005)
            hits = [p for p in self.products() if q in p["name"].lower()]
            return 200, "text/html", page("Search: %s" % html.escape(q), [
                "<p>%d result(s)</p>" % len(hits)] + [
                "<p>%s</p>" % html.escape(p["name"]) for p in hits])
        if path == "/api/products":
            return 200, "application/json", json.dumps(
                {"products": self.products(api=True)}, indent=1) + "\n"
        if path == "/api/names":
            names = [p["name"] for p in PRODUCTS]
            if self.variant == "newdb":
                names.reverse()
            return 200, "application/json", json.dumps(
                {"names": names}, indent=1) + "\n"
        if path.startswith("/api/products/"):
            p = self.product(int_or_none(path.rsplit("/", 1)[1]))
            if p is None:
                return 404, "application/json", '{"error": "not found"}\n'
            return 200, "application/json", json.dumps(p, indent=1) + "\n"
        if path == "/ads":  # different on every request: not worth comparing
            return 200, "text/html", page("Ad", [
                "<p>Offer #%d</p>" % random.randint(1, 10 ** 6)])
        return 404, "text/html", page("Not found", ["<p>Nothing here.</p>"])


def int_or_none(s):
    try:
        return int(s)
    except ValueError:
        return None


def page(title, lines):
    return "\n".join(["<!doctype html>", "<html>", "<head>",
                      "<title>%s</title>" % html.escape(title), "</head>",
                      "<body>", "<h1>%s</h1>" % html.escape(title)]
                     + lines + ["</body>", "</html>", ""])


def make_handler(shop):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "teashop/1.0"
        # Head and body go out in two writes; without TCP_NODELAY the body
        # waits for the peer's delayed ACK (~40 ms) on a kept-alive
        # connection, which would show up as fake latency in the demo.
        disable_nagle_algorithm = True

        def do_GET(self):
            url = urlsplit(self.path)
            status, ctype, text = shop.handle(url.path, parse_qs(url.query))
            body = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype + "; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, fmt, *args):
            pass  # quiet: the demo prints its own summary

    return Handler


def serve(port, variant="production", host="127.0.0.1"):
    """Starts the shop in a background thread; returns the server (call
    .shutdown() and .server_close() to stop it)."""
    server = ThreadingHTTPServer((host, port), make_handler(Shop(variant)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--variant", choices=["production", "newdb"],
                    default="production")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 make_handler(Shop(args.variant)))
    print("%s shop on http://127.0.0.1:%d" % (args.variant, args.port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
