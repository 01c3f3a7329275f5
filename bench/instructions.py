#!/usr/bin/env python3
"""Instructions per request of kagami builds, under callgrind.

CPU time on a shared 2-core machine moves by 10-20% between runs; the
instruction count of the same work barely moves, so this is how a refactor
shows it costs nothing. For each binary: two Debian nginx backends serving
bench/run.py's 1.4 KB page, kagami (1 worker, store off, diff log on) under
`valgrind --tool=callgrind`, N keep-alive GETs from one client, then the
whole process's instructions (every thread) divided by N. Startup is
included, so use N >= 1000; runs differ by about 2% with thread-pool
batching.

Needs valgrind (apt-get install valgrind), besides what make bench needs.

usage: bench/instructions.py [--requests N] [--sample S] [--page PAGE] BINARY [BINARY...]
   e.g. bench/instructions.py /tmp/old/build/kagami build/kagami
        (--sample 0: pure proxy; 1: every request mirrored and compared;
        --page api.json: the noisy JSON answer, with bench/run.py's rules)
"""
import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: pages, nginx, kagami configs)


def instructions(binary, sample, n, page="small.html"):
    tmp = tempfile.mkdtemp(prefix="kagami-ir-")
    os.chmod(tmp, 0o755)
    www = os.path.join(tmp, "www")
    run.make_pages(www)
    run.STORE_SUPPORTED = True
    mp, sp, port = run.free_port(), run.free_port(), run.free_port()
    backends = [run.start_backend(tmp, "master", mp, www), run.start_backend(tmp, "shadow", sp, www)]
    # the rules name only the noisy pages' endpoints
    conf = run.kagami_config(tmp, "k", port, 1, mp, sp, sample, extra=run.NOISE_RULES)
    out = os.path.join(tmp, "callgrind.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary,
                          "run", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        # http.client: the noisy pages come chunked (nginx's sub_filter)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(n):
            c.request("GET", "/" + page, headers={"Host": "bench"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"kagami answered {r.status}")
        c.close()
        time.sleep(2)  # the last comparisons and diff log lines
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=120)
        for b in backends:
            b.stop()
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    return total / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--sample", type=float, default=1.0)
    ap.add_argument("--page", default="small.html",
                    help="a page of bench/run.py's (small.html, api.json, noisy.html, ...)")
    a = ap.parse_args()
    first = None
    for b in a.binaries:
        ir = instructions(b, a.sample, a.requests, a.page)
        first = first or ir
        print(f"{b}: {ir:,.0f} instructions per request (sample {a.sample}, "
              f"{a.requests} requests of /{a.page}){'' if ir == first else f', {ir / first:.3f}x the first'}")


if __name__ == "__main__":
    main()
