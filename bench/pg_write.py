#!/usr/bin/python3
"""The PostgreSQL store (issue 15): what one kagami sustains into it, what
it costs, and how big the database grows. Part of `make bench`; reported,
not a gate.

A real PostgreSQL 15 (tests/integration/pgserver.py) in a temp dir, one
Debian nginx as master and shadow answering 20 endpoints with a small page
(one of them differently on the shadow, so its results are kept one by
one), and kagami (1 worker, diff log off) run twice under the same wrk
load (1 thread, 32 connections, 5 s): with `store = false`, then with
`store = "postgresql://..."`. Prints requests per second, kagami's CPU per
request in both runs and the difference (the store's cost per compared
result), the results counted in the database against those compared, and
the database's size.

usage: bench/pg_write.py [--binary build/kagami] [--seconds 5]
"""
import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import run as bench  # noqa: E402
import pgserver  # noqa: E402

WRK_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/ep" .. (n % 20) .. "/page")
end
"""


def nginx_body(port, variant):
    differs = "shadow" if variant == "shadow" else "master"
    return """
  server {
    listen 127.0.0.1:%d;
    location /ep0/ { default_type text/plain; return 200 "answer of the %s\\n"; }
    location / { default_type text/plain; return 200 "the same answer\\n"; }
  }""" % (port, differs)


def run_kagami(tmp, binary, name, mport, sport, store, seconds):
    port = bench.free_port()
    conf = os.path.join(tmp, name + ".lua")
    with open(conf, "w") as f:
        f.write("""return {
  listen = "127.0.0.1:%d",
  backends = { production = { url = "http://127.0.0.1:%d", master = true },
               newdb = { url = "http://127.0.0.1:%d" } },
  store = %s,
  instance = "bench",
  endpoints = { "/:name/page" },
}
""" % (port, mport, sport, store))
    k = bench.Proc(name, [binary, "run", conf], tmp)
    bench.wait_port(k, port)
    script = os.path.join(tmp, "paths.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA)
    cpu0 = bench.group_cpu_seconds(k.pid)
    out = subprocess.run(["wrk", "-t1", "-c32", "-d%ds" % seconds, "-s", script,
                          "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    time.sleep(3)  # the last batches reach the database
    cpu = bench.group_cpu_seconds(k.pid) - cpu0
    k.stop()
    reqs = 0
    for line in out.splitlines():
        if "requests in" in line:
            reqs = int(line.split()[0])
    stats = bench.parse_stop_line(k.stderr_text()) or {}
    return reqs, cpu, stats, k.stderr_text()


@contextlib.contextmanager
def fixture(name, db):
    """A temp dir, the two nginx backends and a PostgreSQL with database
    db: yields (tmp, master port, shadow port, server, url), or None when
    PostgreSQL is not installed (said on stdout)."""
    if not pgserver.available():
        print("%s: skipped, postgresql-15 is not installed" % name)
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="kagami-%s-" % name)
    os.chmod(tmp, 0o777)
    mport, sport = bench.free_port(), bench.free_port()
    try:
        bench.start_nginx(tmp, "master", 1, nginx_body(mport, "master"), mport)
        bench.start_nginx(tmp, "shadow", 1, nginx_body(sport, "shadow"), sport)
        with pgserver.PgServer() as pg:
            yield tmp, mport, sport, pg, pg.create_database(db)
    finally:
        bench.stop_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=bench.KAGAMI)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)  # the processes run in a temp dir
    with fixture("pg_write", "bench") as fx:
        if fx is None:
            return
        tmp, mport, sport, pg, url = fx
        rows = {}
        for name, store in (("nostore", "false"), ("pg", '"%s"' % url)):
            rows[name] = run_kagami(tmp, args.binary, name, mport, sport, store,
                                    args.seconds)
        counted = int(pg.scalar("bench", "SELECT coalesce(sum(compared), 0) FROM agg_requests"))
        kept = int(pg.scalar("bench", "SELECT count(*) FROM results"))
        size = int(pg.scalar("bench", "SELECT pg_database_size('bench')"))
        empty = int(pg.scalar("postgres", "SELECT pg_database_size('template1')"))
        print("PostgreSQL store (1 worker, wrk -t1 -c32 -d%ds, 20 endpoints, 1 in 20 "
              "differing):" % args.seconds)
        for name in ("nostore", "pg"):
            reqs, cpu, _, _ = rows[name]
            print("  %-22s %8.0f req/s  %6.1f us CPU per request" % (
                "store = false" if name == "nostore" else "store = postgresql",
                reqs / args.seconds, cpu * 1e6 / max(1, reqs)))
        cost = (rows["pg"][1] * 1e6 / max(1, rows["pg"][0])
                - rows["nostore"][1] * 1e6 / max(1, rows["nostore"][0]))
        compared = rows["pg"][2].get("compared") if rows["pg"][2] else None
        print("  the store's CPU per compared result (difference): %.1f us" % cost)
        print("  results counted in PostgreSQL %d of %s compared; %d kept one by one"
              % (counted, compared, kept))
        print("  database size %.1f MiB (an empty one: %.1f MiB)"
              % (size / 2 ** 20, empty / 2 ** 20))


if __name__ == "__main__":
    main()
