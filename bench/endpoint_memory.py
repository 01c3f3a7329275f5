#!/usr/bin/python3
"""What tracking endpoints costs in memory: kagami's RSS as distinct paths
arrive, for sizing a box. Part of `make bench`; reported, not a gate.

kagami runs with the default config (diff log off as by default, the
default store in a temp dir, 1 worker) in front of one Debian nginx that
answers every path with a small page, as master and as shadow. The script
reads VmRSS from /proc:
  1. after a warm-up on one path;
  2. after 1,000 distinct endpoints (2 requests each: master and shadow
     latencies both recorded), which fills the default `max_endpoints`;
  3. after 1,000 more distinct endpoints, which go under "(other)": the
     cap holds memory flat;
  4. after a mixed workload: 20,000 requests over 50 endpoints.
and prints the bytes per tracked endpoint. The same is run with
`max_endpoints = 100` to show the setting's effect.

usage: bench/endpoint_memory.py [--binary build/kagami]
"""
import argparse
import http.client
import os
import random
import string
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (bench/run.py: nginx and process helpers)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def word(rng):
    # letters only: endpoint templating turns numbers and ids into :id,
    # and here every path must stay an endpoint of its own
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def send(port, paths, times=1):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for p in paths:
        for _ in range(times):
            c.request("GET", p)
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("%s: %d" % (p, r.status))
    c.close()


def metric(admin_port, name):
    """One unlabelled sample of kagami's /metrics, or None."""
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def endpoints_metric(admin_port):
    return metric(admin_port, "kagami_endpoints")


def settle(admin_port, want_results):
    """Waits until the thread pool has compared what was sent."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (metric(admin_port, "kagami_compared_total") or 0) >= want_results:
            return
        time.sleep(0.2)


def run_one(tmp, binary, backend_port, max_endpoints):
    port, admin = bench.free_port(), bench.free_port()
    name = "k%d" % (max_endpoints or 0)
    conf = os.path.join(tmp, name + ".lua")
    extra = "  max_endpoints = %d,\n" % max_endpoints if max_endpoints else ""
    with open(conf, "w") as f:
        f.write("""return {
  listen = "127.0.0.1:%d",
  admin = %d,
  backends = {
    production = { url = "http://127.0.0.1:%d", master = true },
    newdb = { url = "http://127.0.0.1:%d" },
  },
  store = "%s/%s.db",
%s}
""" % (port, admin, backend_port, backend_port, tmp, name, extra))
    k = bench.Proc(name, [binary, "run", conf], tmp)
    bench.wait_port(k, port)
    rng = random.Random(7)
    sent = 0
    send(port, ["/warm"] * 20)
    sent += 20
    settle(admin, sent)
    rows = [("warm-up, 1 endpoint", rss_kib(k.p.pid), endpoints_metric(admin))]
    first = ["/%s/%s" % (word(rng), word(rng)) for _ in range(1000)]
    send(port, first, 2)
    sent += 2000
    settle(admin, sent)
    rows.append(("+1,000 distinct endpoints", rss_kib(k.p.pid), endpoints_metric(admin)))
    more = ["/%s/%s" % (word(rng), word(rng)) for _ in range(1000)]
    send(port, more, 2)
    sent += 2000
    settle(admin, sent)
    rows.append(("+1,000 more", rss_kib(k.p.pid), endpoints_metric(admin)))
    mixed = ["/mix/%s" % word(rng) for _ in range(50)]
    send(port, [rng.choice(mixed) for _ in range(20000)])
    sent += 20000
    settle(admin, sent)
    rows.append(("+20,000 requests over 50 endpoints", rss_kib(k.p.pid),
                 endpoints_metric(admin)))
    k.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=bench.KAGAMI)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kagami-epmem-")
    os.chmod(tmp, 0o777)
    backend_port = bench.free_port()
    body = """
  server {
    listen 127.0.0.1:%d;
    location / { default_type text/html; return 200 "<p>hello</p>\\n"; }
  }""" % backend_port
    try:
        bench.start_nginx(tmp, "backend", 1, body, backend_port)
        for cap in (None, 100):
            rows = run_one(tmp, args.binary, backend_port, cap)
            print("endpoint memory, max_endpoints = %s (1 worker, default store, "
                  "2 backends):" % (cap or "1000 (default)"))
            base = rows[0][1]
            for what, kib, eps in rows:
                print("  %-36s RSS %7.1f MiB  (+%6.1f MiB)  tracked endpoints %s"
                      % (what, kib / 1024, (kib - base) / 1024, eps))
            if cap is None:
                per = (rows[1][1] - base) / max(1, (rows[1][2] or 1) - 1)
                print("  per tracked endpoint: about %.0f KiB" % per)
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
