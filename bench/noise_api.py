#!/usr/bin/python3
"""Cost of showing learned noise at its caps: /api/noise and `kagami noise`
when the model holds all it may (262,144 locations over 64 endpoints of
4,096 each, noise.h's caps).

/api/noise is answered on the admin listener's loop (main thread), not in
the thread pool: it copies the model under the lock the workers' noise
pairs share, then writes JSON. This measures, as users run it (the release
binary, `kagami run` with an admin listener and noise = { learn = true }
and a secondary backend), how long that takes and how big the answer is
when the model is full, so the README can say what a person or a scraper
costs.

It starts three backends in this process (master, shadow, secondary: the
same code, every answer a JSON object of 100 keys with random values, so
every key differs in every noise pair; the keys change with the request,
?i=N), then sends 41 requests to each of 64 endpoints through kagami, so
each endpoint learns 4,096+ locations and the total cap is reached. Each
location differs in 1 of 41 pairs, so the config's noise.threshold is
0.01 for every one to be suppressed (and exported). Then it times GET /api/noise (every endpoint, and
one endpoint), `kagami noise --format json`, `kagami noise --export`, and
reads kagami's resident memory.

With --browser it also opens the dashboard's Learned noise view in
headless Chromium (bench/noise_dashboard.mjs; needs `make browser-test`
to have installed playwright-core) and times it.

Usage: bench/noise_api.py [--binary build/kagami] [--runs 5] [--browser]
Python 3 standard library only (plus node for --browser).
"""
import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = 64
KEYS = 100            # differences a comparison stores (kg_diffs' default max)
PER_ENDPOINT = 41     # 41 x 100 > 4,096 locations per endpoint


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out as two writes

    def do_GET(self):
        i = self.path.rsplit("=", 1)[-1]
        body = json.dumps({"k%s_%d" % (i, j): secrets.token_hex(4)
                           for j in range(KEYS)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def backend():
    s = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def name(k):
    return "e" + chr(ord("a") + k // 26) + chr(ord("a") + k % 26)


def timed_get(port, target, runs):
    """Median and max seconds of GET target, and the body of the last."""
    times, body = [], b""
    for _ in range(runs):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.perf_counter()
        c.request("GET", target)
        r = c.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t0)
        assert r.status == 200, (r.status, body[:200])
        c.close()
    return statistics.median(times), max(times), body


def timed_cli(binary, args, runs):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([binary, "noise", *args], capture_output=True, timeout=120)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "build" / "kagami"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--browser", action="store_true")
    a = ap.parse_args()
    master, shadow, secondary = backend(), backend(), backend()
    listen, admin = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="kagami-noise-bench-"))
    config = work / "kagami.lua"
    config.write_text("""return {
  listen = "127.0.0.1:%d",
  backends = {
    production = { url = "http://127.0.0.1:%d", master = true },
    newdb = { url = "http://127.0.0.1:%d" },
    replica = { url = "http://127.0.0.1:%d", secondary = true },
  },
  admin = %d,
  noise = { learn = true, threshold = 0.01 },
}
""" % (listen, master.server_port, shadow.server_port, secondary.server_port, admin))
    k = subprocess.Popen([a.binary, "run", str(config)], cwd=work,
                         stdout=subprocess.DEVNULL, stderr=open(work / "stderr", "wb"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", listen), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rss0 = rss_kib(k.pid)
        c = http.client.HTTPConnection("127.0.0.1", listen, timeout=30)
        t0 = time.perf_counter()
        n = 0
        for i in range(PER_ENDPOINT):
            for e in range(ENDPOINTS):
                c.request("GET", "/%s?i=%d" % (name(e), i))
                c.getresponse().read()
                n += 1
        # Comparisons finish after the answers: wait for all of them (on
        # /metrics, so that nothing has asked /api/noise before the memory
        # is read). Counters are published once a second.
        for _ in range(600):
            m = timed_get(admin, "/metrics", 1)[2].decode()
            done = [l for l in m.splitlines() if l.startswith("kagami_compared_total")]
            if done and float(done[0].split()[-1]) >= n:
                break
            time.sleep(0.1)
        rss_full = rss_kib(k.pid)
        j = json.loads(timed_get(admin, "/api/noise", 1)[2])
        fill_s = time.perf_counter() - t0
        locs = sum(len(e["locations"]) for e in j["endpoints"])
        print("model: %d endpoints, %d locations, full=%s, %d pairs in %.1f s"
              % (len(j["endpoints"]), locs, j["full"], n, fill_s))
        print("kagami RSS: %.1f MiB at start, %.1f MiB full, before any /api/noise "
              "(%.0f bytes per location, all else included)"
              % (rss0 / 1024, rss_full / 1024, (rss_full - rss0) * 1024 / max(locs, 1)))
        med, worst, body = timed_get(admin, "/api/noise", a.runs)
        print("GET /api/noise (everything): median %.1f ms, max %.1f ms, %.1f MiB"
              % (med * 1e3, worst * 1e3, len(body) / 2**20))
        med, worst, body = timed_get(admin, "/api/noise?endpoint=GET%20/eaa", a.runs)
        print("GET /api/noise?endpoint=GET /eaa: median %.1f ms, max %.1f ms, %.0f KiB"
              % (med * 1e3, worst * 1e3, len(body) / 1024))
        url = "http://127.0.0.1:%d" % admin
        med, out = timed_cli(a.binary, ["--admin", url, "--format", "json"], a.runs)
        print("kagami noise --format json: median %.2f s (exit %d)" % (med, out.returncode))
        med, out = timed_cli(a.binary, ["--admin", url], a.runs)
        print("kagami noise (table): median %.2f s, %d lines" % (med, out.stdout.count(b"\n")))
        med, out = timed_cli(a.binary, ["--admin", url, "--export"], a.runs)
        print("kagami noise --export: median %.2f s, %.1f MiB" % (med, len(out.stdout) / 2**20))
        if a.browser:
            out = subprocess.run(["node", str(ROOT / "bench" / "noise_dashboard.mjs"), url,
                                  str(ENDPOINTS)], capture_output=True, text=True, timeout=300)
            print("dashboard, Learned noise view:", out.stdout.strip() or out.stderr[-2000:])
        return 0
    finally:
        k.terminate()
        k.wait(30)


if __name__ == "__main__":
    sys.exit(main())
