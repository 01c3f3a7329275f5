#!/usr/bin/python3
"""Soak test (issue 6 point 5): `make soak`.

Runs build/asan/kagami (or $KAGAMI_BIN) for SOAK_SECONDS (default 180)
under mixed load against a healthy master and a shadow that fails in a
seeded mix of ways (backends.FaultyBackend): keep-alive and one-shot
clients, pipelining, bad requests, clients that disconnect mid-response or
mid-request. Then:

- RSS, sampled every second, is fitted with a line over the second half of
  the run; the slope is reported in MB/min;
- open file descriptors (/proc/PID/fd) must come back to the baseline once
  the load has stopped and idle connections have timed out (client_timeout
  for clients, the pool's idle timeout for backends);
- kagami is stopped with SIGTERM: it must exit 0 with no sanitizer report;
- a 504 (the master timed out) counts against kagami only if this process,
  which also runs the master, did not stall while the request waited; a
  kept-alive connection closed under a client only if this process did not
  just stall for client_timeout (kagami then rightly closed it as idle). A
  heartbeat thread notes the stalls; they are printed.

Prints a summary; exits 1 on a sanitizer report, an fd leak, kagami dying
or exiting non-zero, or any valid request that did not get its answer.
"""

import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import rawhttp  # noqa: E402
from backends import (FaultyBackend, diff_body, free_port,  # noqa: E402
                      seeded_chooser, text_body)
from harness import (Kagami, kagami_bin, render_config,  # noqa: E402
                     sanitizer_reports)

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
CLIENT_TIMEOUT = 3          # kagami's client_timeout (idle clients cut)
BACKEND_TIMEOUT = 2         # kagami's backend_timeout (held shadows)
POOL_IDLE = 30              # upstream.c KG_POOL_IDLE_TIMEOUT_MS
FD_WAIT = CLIENT_TIMEOUT + POOL_IDLE + 10
BIG = 256 * 1024
SEED = int(os.environ.get("SOAK_SEED", "6"))

BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;a\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.timeouts = []  # (when, what) of 504 answers, judged at the end
        self.closed = []    # (when, what): kept-alive connection closed on us

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, what, status=None, closed=False):
        with self.lock:
            if status == 504:
                self.timeouts.append((time.monotonic(), what))
                return
            if closed:
                self.closed.append((time.monotonic(), what))
                return
            self.counts["ERRORS"] = self.counts.get("ERRORS", 0) + 1
            if len(self.errors) < 20:
                self.errors.append(what)


class Heartbeat(threading.Thread):
    """Notes when this process itself stopped running for a while. The load
    and both backends live in this one Python process: when it stalls (the
    GIL held, a collection), the master cannot answer, and kagami's 504
    after backend_timeout is the right answer, not a fault of kagami's."""

    TICK, STALL = 0.05, 0.5

    def __init__(self):
        super().__init__(daemon=True)
        self.stalls = []  # (start, end)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            t0 = time.monotonic()
            time.sleep(self.TICK)
            t1 = time.monotonic()
            if t1 - t0 > self.STALL:
                self.stalls.append((t0, t1))

    def covers(self, answered_at, waited):
        """Whether a stall overlapped the `waited` seconds before an answer."""
        return any(s0 <= answered_at and s1 >= answered_at - waited
                   for s0, s1 in self.stalls)

    def idled(self, seen_at, idle):
        """Whether a stall of at least `idle` seconds ended just before:
        a client kept idle that long by the stall is rightly closed by
        kagami (client_timeout) and finds out when it next sends."""
        return any(s1 - s0 >= idle and s1 - 0.1 <= seen_at <= s1 + 2.0
                   for s0, s1 in self.stalls)


def closed_on_us(e):
    """The peer closed (or reset) a kept-alive connection under us."""
    return isinstance(e, (rawhttp.IncompleteResponse, ConnectionResetError,
                          BrokenPipeError))


def check_answer(stats, kind, target, resp):
    """The answer a valid request must get (the master's)."""
    path = target.split("?")[0]
    if path.startswith("/text/"):
        want = text_body(int(path.split("/")[2]))
    elif path == "/diff":
        want = diff_body(None)
    else:
        want = None
    if resp.status != 200 or (want is not None and resp.body != want):
        stats.error("%s %s -> %d %r" % (kind, target, resp.status,
                                        resp.raw[:120]), resp.status)
    else:
        stats.count(kind)


def pick_target(rng, i):
    r = rng.random()
    if r < 0.5:
        return "GET", "/text/%d?i=%d" % (rng.randint(1, 60), i), None
    if r < 0.7:
        return "GET", "/diff?i=%d" % i, None
    if r < 0.85:
        return "POST", "/echo?i=%d" % i, b"body %d " % i * rng.randint(1, 40)
    return "HEAD", "/text/3?i=%d" % i, None


def keepalive_worker(port, stats, stop, wid):
    rng = random.Random(SEED * 100 + wid)
    i = 0
    while not stop.is_set():
        try:
            with rawhttp.Connection(port, timeout=15) as c:
                for _ in range(rng.randint(20, 300)):
                    if stop.is_set():
                        break
                    i += 1
                    method, target, body = pick_target(rng, i)
                    resp = c.request(method, target, body=body)
                    if method == "POST":
                        ok = resp.status == 200 and body in resp.body
                        (stats.count("keepalive") if ok else
                         stats.error("POST %s -> %d" % (target, resp.status),
                                     resp.status))
                    elif method == "HEAD":
                        (stats.count("keepalive") if resp.status == 200 else
                         stats.error("HEAD %s -> %d" % (target, resp.status),
                                     resp.status))
                    else:
                        check_answer(stats, "keepalive", target, resp)
        except (OSError, ValueError, rawhttp.IncompleteResponse) as e:
            stats.error("keepalive: %r" % e, closed=closed_on_us(e))


def oneshot_worker(port, stats, stop, wid):
    rng = random.Random(SEED * 100 + wid)
    i = 0
    while not stop.is_set():
        i += 1
        target = "/text/%d?one=%d" % (rng.randint(1, 30), i)
        version = "HTTP/1.0" if i % 3 == 0 else "HTTP/1.1"
        try:
            with rawhttp.Connection(port, timeout=15) as c:
                headers = [] if version == "HTTP/1.0" else \
                    [("Connection", "close")]
                resp = c.request("GET", target, headers, version=version)
                check_answer(stats, "oneshot", target, resp)
                if not c.closed_by_peer(timeout=5):
                    stats.error("oneshot: connection left open")
        except (OSError, ValueError, rawhttp.IncompleteResponse) as e:
            stats.error("oneshot: %r" % e)


def pipeline_worker(port, stats, stop, wid):
    rng = random.Random(SEED * 100 + wid)
    i = 0
    while not stop.is_set():
        try:
            with rawhttp.Connection(port, timeout=15) as c:
                for _ in range(rng.randint(5, 50)):
                    if stop.is_set():
                        break
                    targets = []
                    for _ in range(rng.randint(2, 10)):
                        i += 1
                        targets.append("/text/%d?p=%d" % (rng.randint(1, 20), i))
                    c.send(b"".join(rawhttp.build_request("GET", t)
                                    for t in targets))
                    for t in targets:
                        check_answer(stats, "pipelined", t, c.read_response())
        except (OSError, ValueError, rawhttp.IncompleteResponse) as e:
            stats.error("pipeline: %r" % e, closed=closed_on_us(e))


def bad_worker(port, stats, stop, wid):
    rng = random.Random(SEED * 100 + wid)
    while not stop.is_set():
        raw = rng.choice(BAD_REQUESTS)
        try:
            with rawhttp.Connection(port, timeout=15) as c:
                c.send_lenient(raw)
                resp = c.read_response()
                if resp.status < 400:
                    stats.error("bad request answered %d" % resp.status)
                else:
                    stats.count("bad %d" % resp.status)
        except (OSError, ValueError, rawhttp.IncompleteResponse) as e:
            stats.error("bad: %r" % e)
        time.sleep(0.02)


def disconnect_worker(port, stats, stop, wid):
    """Clients that vanish: mid-response, mid-request head, mid-body."""
    rng = random.Random(SEED * 100 + wid)
    i = 0
    while not stop.is_set():
        i += 1
        mode = i % 3
        try:
            c = rawhttp.Connection(port, timeout=15)
            try:
                if mode == 0:
                    c.send(rawhttp.build_request("GET", "/big/%d?d=%d"
                                                 % (BIG, i)))
                    c.reader.until(b"\r\n\r\n")
                    c.reader.exact(rng.randint(1, 20000))
                    stats.count("left mid-response")
                elif mode == 1:
                    c.send(b"GET /text/5?d=%d HTTP/1.1\r\nHost: x\r\nX-A: "
                           % i)
                    stats.count("left mid-head")
                else:
                    c.send(b"POST /echo?d=%d HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 10000\r\n\r\n" % i + b"x" * 500)
                    stats.count("left mid-body")
                time.sleep(rng.random() * 0.01)
            finally:
                if rng.random() < 0.5:  # half of them with a reset
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                c.close()
        except (OSError, ValueError, rawhttp.IncompleteResponse) as e:
            stats.error("disconnect: %r" % e)
        time.sleep(0.01)


WORKERS = [keepalive_worker] * 3 + [oneshot_worker, pipeline_worker,
                                    bad_worker, disconnect_worker]


def rss_kb(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in kB: VmRSS, or RssAnon (heap
    and stacks only: files mapped by SQLite or the loader do not count)."""
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fds(pid):
    d = "/proc/%d/fd" % pid
    out = {}
    for name in os.listdir(d):
        try:
            out[name] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


def slope_mb_per_min(samples):
    """Least-squares slope of (t seconds, kB) samples, in MB/min."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return 0.0
    num = sum((t - mt) * (v - mv) for t, v in samples)
    return num / den * 60 / 1024


def wait_fds(pid, target, timeout):
    deadline = time.monotonic() + timeout
    while True:
        now = fds(pid)
        if len(now) <= target or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


def main():
    # ASan keeps freed memory in a quarantine (256 MB by default) before
    # reusing it: RSS would climb for minutes whatever kagami does. A small
    # quarantine keeps use-after-free detection and lets RSS show real use.
    opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                          "halt_on_error=1:detect_stack_use_after_return=1")
    if "quarantine_size_mb" not in opts:
        os.environ["ASAN_OPTIONS"] = opts + ":quarantine_size_mb=16"
    workdir = Path(tempfile.mkdtemp(prefix="kagami-soak-"))
    # FaultyBackend without faults for the master too: its deeper accept
    # queue keeps the kernel from dropping connects under this load (a
    # dropped SYN is retried a second later: a false 504).
    master = FaultyBackend("production").start()
    shadow = FaultyBackend("newdb", variant="newdb",
                           choose=seeded_chooser(SEED)).start()
    port = free_port()
    log = workdir / "diffs.jsonl"
    text = render_config("127.0.0.1:%d" % port, [master, shadow],
                         "production", log,
                         {"client_timeout": CLIENT_TIMEOUT,
                          "backend_timeout": BACKEND_TIMEOUT,
                          "shadow_methods": ["GET", "HEAD", "POST"]})
    k = Kagami(workdir, text, port, log)
    k_bin = kagami_bin()
    problems = []
    try:
        k.start()
        pid = k.proc.pid
        # Baseline: every file kagami keeps open, with no connection at all
        # (after one request, so that whatever opens lazily is open).
        k.get("/text/1")
        master.drop_connections()
        shadow.drop_connections()
        time.sleep(0.5)
        base = wait_fds(pid, 0, 2.0)
        baseline = len(base)

        stats, stop = Stats(), threading.Event()
        heartbeat = Heartbeat()
        heartbeat.start()
        threads = [threading.Thread(target=w, args=(port, stats, stop, i),
                                    daemon=True)
                   for i, w in enumerate(WORKERS)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        samples, anon, peak_fds = [], [], baseline
        last_print = t_start
        while time.monotonic() - t_start < SOAK_SECONDS:
            time.sleep(1.0)
            if k.proc.poll() is not None:
                problems.append("kagami died (exit %s)" % k.proc.returncode)
                break
            now = time.monotonic() - t_start
            samples.append((now, rss_kb(pid)))
            anon.append((now, rss_kb(pid, "RssAnon")))
            peak_fds = max(peak_fds, len(fds(pid)))
            if time.monotonic() - last_print >= 30:
                last_print = time.monotonic()
                print("soak: %3.0fs  rss %.1f MB  fds %d  %s" % (
                    now, samples[-1][1] / 1024, len(fds(pid)),
                    dict(sorted(stats.counts.items()))), flush=True)
        stop.set()
        for t in threads:
            t.join(30)
        load_seconds = time.monotonic() - t_start

        end = {}
        if k.proc.poll() is None:
            end = wait_fds(pid, baseline, FD_WAIT)
            if len(end) > baseline:
                extra = sorted(set(end.values()) - set(base.values()))
                problems.append("fd leak: %d open after %ds idle, baseline %d;"
                                " new: %s" % (len(end), FD_WAIT, baseline,
                                              extra[:20]))
            rc = k.stop()
            if rc != 0:
                problems.append("kagami exited %s on SIGTERM" % rc)
        err = k.stderr()
        found = sanitizer_reports(err)
        if found:
            problems.append("sanitizer reports: %s" % found)
        heartbeat.done.set()
        # A 504 is the master timing out: kagami's fault only when this
        # process (the master's) did not stall while the request waited.
        waited = BACKEND_TIMEOUT + 1.0
        # A kept-alive connection closed on a client is kagami's
        # client_timeout at work only if this process stalled at least that
        # long just before.
        idle = CLIENT_TIMEOUT - 0.5
        excused = [w for t, w in stats.timeouts if heartbeat.covers(t, waited)]
        excused_closed = [w for t, w in stats.closed if heartbeat.idled(t, idle)]
        for t, w in ([(t, w) for t, w in stats.timeouts if not heartbeat.covers(t, waited)]
                     + [(t, w) for t, w in stats.closed if not heartbeat.idled(t, idle)]):
            stats.counts["ERRORS"] = stats.counts.get("ERRORS", 0) + 1
            if len(stats.errors) < 20:
                stats.errors.append(w)
        if stats.counts.get("ERRORS"):
            problems.append("%d valid requests without their answer, e.g. %s"
                            % (stats.counts["ERRORS"], stats.errors[:5]))
        stopline = [l for l in err.splitlines() if "stopped listening" in l]

        half = [s for s in samples if s[0] >= load_seconds / 2]
        anon_half = [s for s in anon if s[0] >= load_seconds / 2]
        print("\n==== kagami soak summary ====")
        print("duration:      %.0fs of load (SOAK_SECONDS=%g), seed %d"
              % (load_seconds, SOAK_SECONDS, SEED))
        print("binary:        %s (ASAN_OPTIONS=%s)"
              % (k_bin, os.environ["ASAN_OPTIONS"]))
        print("client side:   %s" % dict(sorted(stats.counts.items())))
        longest = max((s1 - s0 for s0, s1 in heartbeat.stalls), default=0.0)
        print("harness:       %d stalls of this process over %.1fs (longest %.1fs);"
              " during them %d master timeouts (504) and %d idle connections"
              " closed by client_timeout, not counted against kagami"
              % (len(heartbeat.stalls), Heartbeat.STALL, longest, len(excused),
                 len(excused_closed)))
        print("shadow faults: %s" % dict(sorted(
            (str(f), n) for f, n in shadow.faults_served.items())))
        if samples:
            print("rss:           start %.1f MB, peak %.1f MB, end %.1f MB"
                  % (samples[0][1] / 1024, max(v for _, v in samples) / 1024,
                     samples[-1][1] / 1024))
            print("rss slope:     %+.3f MB/min (second half, %d samples)"
                  % (slope_mb_per_min(half), len(half)))
            print("anon rss:      start %.1f MB, end %.1f MB, slope %+.3f "
                  "MB/min (second half)"
                  % (anon[0][1] / 1024, anon[-1][1] / 1024,
                     slope_mb_per_min(anon_half)))
        print("fds:           baseline %d, peak %d, after idle %d"
              % (baseline, peak_fds, len(end)))
        print("sanitizers:    %s" % (", ".join(found) if found else "no reports"))
        if stopline:
            print("stop line:     %s" % stopline[-1].split(": ", 1)[-1])
        print("result:        %s" % ("FAILED\n  - " + "\n  - ".join(problems)
                                     if problems else "ok"))
        if problems:
            print("---- kagami stderr (tail) ----\n%s" % err[-4000:])
    finally:
        if k.proc is not None and k.proc.poll() is None:
            k.proc.send_signal(signal.SIGKILL)
            k.proc.wait(10)
        master.stop()
        shadow.stop()
        if problems:
            print("kagami's files kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
