#!/usr/bin/env python3
"""How long `kagami report` takes over a week of aggregates.

Builds a store as kagami would hold it after 7 days at 10,000 compared
requests per second over 50 endpoints, master and one shadow: every
minute of the week has, per endpoint, its request counts, one latency
histogram per backend and, for the endpoints that differ, a few
locations (about 0.5 M + 1 M + 0.6 M aggregate rows). The schema comes
from kagami itself (it creates the store at start, then is stopped); the
rows (per minute, and per hour as the writer also keeps them) are
written here directly, in the format src/results/storeagg.h describes,
instead of sending 6 billion requests.

Then it times `kagami report` over the whole week, text and JSON, and
over the last hour, each run 3 times (the median is printed).

    /usr/bin/python3 bench/store_report.py [--binary build/kagami]
        [--db /tmp/kagami-week.db] [--endpoints 50] [--days 7] [--rate 10000]
"""
import argparse
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# histogram.h's layout: 256 exact buckets, then 128 per power of two.
SUB = 128


def bucket_of(v):
    if v < 256:
        return v
    k = v.bit_length() - 1          # 2^k <= v < 2^(k+1)
    return 256 + (k - 8) * SUB + ((v - (1 << k)) >> (k - 7))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def hist_blob(values):
    """storeagg.h's blob: format 1, min, max, sum, then (gap, count)."""
    counts = {}
    for v in values:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    out = bytearray(b"\x01")
    out += varint(min(values)) + varint(max(values)) + varint(sum(values))
    prev = 0
    for i in sorted(counts):
        out += varint(i - prev) + varint(counts[i])
        prev = i
    return bytes(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_schema(binary, db, tmp):
    """Lets kagami create an empty store at db (start, then SIGTERM)."""
    conf = os.path.join(tmp, "week.lua")
    with open(conf, "w") as f:
        f.write('return { listen = "127.0.0.1:%d", backends = {'
                ' production = { url = "http://127.0.0.1:9", master = true },'
                ' newdb = { url = "http://127.0.0.1:9" } }, store = "%s" }\n'
                % (free_port(), db))
    p = subprocess.Popen([binary, "run", conf], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(db) and os.path.getsize(db) > 0:
            try:
                c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
                n = c.execute("SELECT count(*) FROM sqlite_master WHERE name ="
                              " 'agg_requests'").fetchone()[0]
                c.close()
                if n:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=20)[1]
    if p.returncode != 0:
        sys.exit("kagami run failed:\n" + err)


def fill(db, endpoints, days, rate):
    rnd = random.Random(12)
    now_min = int(time.time() // 60)
    minutes = days * 24 * 60
    first = now_min - minutes + 1
    per_ep_min = rate * 60 // endpoints
    # A few dozen histogram shapes, reused: what matters to the reader is
    # the number of rows and buckets, not their exact values.
    blobs, hour_blobs = [], []
    for k in range(32):
        base = 800 + 150 * k
        vals = [max(1, int(rnd.lognormvariate(0, 0.6) * base)) for _ in range(400)]
        blobs.append(hist_blob(vals))
        vals = [max(1, int(rnd.lognormvariate(0, 0.6) * base)) for _ in range(4000)]
        hour_blobs.append(hist_blob(vals))
    names = ["GET /api/v%d/items/:id" % i for i in range(endpoints)]
    c = sqlite3.connect(db)
    c.execute("PRAGMA synchronous = OFF")
    c.execute("BEGIN")
    for m in range(first, now_min + 1):
        req, be, loc = [], [], []
        for i, ep in enumerate(names):
            differing = per_ep_min // 50 if i % 5 == 0 else 0
            errors = per_ep_min // 1000
            req.append((ep, m, per_ep_min, differing, errors, m * 60.0, m * 60.0 + 59.9))
            be.append((ep, m, "production", "master", 0, 0, blobs[(i + m) % 32]))
            be.append((ep, m, "newdb", "shadow", 1, errors, blobs[(i + m + 3) % 32]))
            if differing:
                for j in range(3):
                    loc.append((ep, m, "$.items[%d].price" % j, differing // (j + 1)))
        c.executemany("INSERT INTO agg_requests VALUES (?,?,?,?,?,?,?)", req)
        c.executemany("INSERT INTO agg_backends VALUES (?,?,?,?,?,?,?)", be)
        c.executemany("INSERT INTO agg_locations VALUES (?,?,?,?)", loc)
    # The hourly rows the writer keeps beside the minutes.
    c.execute("INSERT INTO agg_requests_hour SELECT endpoint, minute / 60, sum(compared),"
              " sum(differing), sum(errors), min(first_ts), max(last_ts) FROM agg_requests"
              " GROUP BY 1, 2")
    c.execute("INSERT INTO agg_locations_hour SELECT endpoint, minute / 60, loc, sum(count)"
              " FROM agg_locations GROUP BY 1, 2, 3")
    hours = [(ep, h, b, role, pos, errors, hour_blobs[(i + h + pos) % 32])
             for (ep, h, b, role, pos, errors, i) in c.execute(
                 "SELECT endpoint, minute / 60, backend, role, pos, sum(errors),"
                 " CAST(substr(endpoint, 13) AS INTEGER) FROM agg_backends GROUP BY 1, 2, 3")]
    c.executemany("INSERT INTO agg_backends_hour VALUES (?,?,?,?,?,?,?)", hours)
    c.execute("COMMIT")
    c.execute("ANALYZE")
    counts = [c.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
              for t in ("agg_requests", "agg_backends", "agg_locations", "agg_backends_hour")]
    total = c.execute("SELECT sum(compared) FROM agg_requests").fetchone()[0]
    c.close()
    return counts, total


def timed(argv, runs=3):
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.monotonic() - t0)
        if p.returncode != 0:
            sys.exit("%s: exit %d\n%s" % (" ".join(argv), p.returncode, p.stderr))
    return statistics.median(times), p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "kagami"))
    ap.add_argument("--db")
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--rate", type=int, default=10000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kagami-week-")
    db = a.db or os.path.join(tmp, "week.db")
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(db + sfx):
            os.unlink(db + sfx)
    make_schema(a.binary, db, tmp)
    t0 = time.monotonic()
    counts, total = fill(db, a.endpoints, a.days, a.rate)
    print("store %s: %d days x %d endpoints x 2 backends at %d req/s = %d requests counted;"
          " rows: agg_requests %d, agg_backends %d, agg_locations %d, agg_backends_hour %d;"
          " %.0f MB; built in %.0f s"
          % (db, a.days, a.endpoints, a.rate, total, *counts, os.path.getsize(db) / 1e6,
             time.monotonic() - t0))
    for label, args in (("report, whole store, text", []),
                        ("report, whole store, --format json", ["--format", "json"]),
                        ("report --since 1h", ["--since", "1h"])):
        secs, out = timed([a.binary, "report", "--db", db] + args)
        print("%-36s %.3f s (median of 3)" % (label, secs))
    print(out.splitlines()[0])


if __name__ == "__main__":
    main()
