#!/usr/bin/python3
"""A fleet's report from PostgreSQL (issue 15): how long `kagami report
--db postgresql://...` takes on a day of a fleet. Part of `make bench`;
reported, not a gate.

A real PostgreSQL 15 (pg_write.fixture: tests/integration/pgserver.py); one
kagami writes a second of real traffic into it (so the schema and the
latency histograms are kagami's own), then SQL multiplies those rows into
a synthetic fleet: INSTANCES instances x ENDPOINTS endpoints x 2 backends
x MINUTES minutes, one differing location per endpoint and minute, as a
store of schema version 1 (minute rows only). A kagami started on it then
upgrades it to version 2, building the hour rows (timed), and the report
is timed over the last hour, the whole day, and the day of one instance.

usage: bench/pg_report.py [--binary build/kagami] [--instances 10]
                          [--endpoints 50] [--minutes 1440]
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import run as bench  # noqa: E402
import pg_write  # noqa: E402


def synthesize(pg, db, instances, endpoints, minutes):
    """Replaces the real rows by a fleet's day built from them."""
    now_min = int(time.time() // 60)
    first = now_min - minutes + 1
    blob = pg.scalar(db, "SELECT encode(latency, 'hex') FROM agg_backends "
                         "WHERE role = 'master' ORDER BY length(latency) DESC LIMIT 1")
    sql = """
BEGIN;
DELETE FROM agg_requests; DELETE FROM agg_backends; DELETE FROM agg_locations;
INSERT INTO agg_requests
  SELECT 'i' || i, 'p', 'GET /ep' || e || '/page', m, 60, 3, 0, m * 60.0, m * 60.0 + 59
  FROM generate_series(1, %(i)d) i, generate_series(1, %(e)d) e,
       generate_series(%(f)d, %(n)d) m;
INSERT INTO agg_backends
  SELECT 'i' || i, 'p', 'GET /ep' || e || '/page', m, b, CASE b WHEN 'production'
         THEN 'master' ELSE 'shadow' END, CASE b WHEN 'production' THEN 0 ELSE 1 END, 0,
         decode('%(blob)s', 'hex')
  FROM generate_series(1, %(i)d) i, generate_series(1, %(e)d) e,
       generate_series(%(f)d, %(n)d) m, unnest(ARRAY['production', 'newdb']) b;
INSERT INTO agg_locations
  SELECT 'i' || i, 'p', 'GET /ep' || e || '/page', m, '$.items[' || (m %% 5) || '].price', 3
  FROM generate_series(1, %(i)d) i, generate_series(1, %(e)d) e,
       generate_series(%(f)d, %(n)d) m;
UPDATE kagami_meta SET value = '1' WHERE key = 'schema_version';
DROP TABLE agg_requests_hour, agg_backends_hour, agg_locations_hour;
COMMIT;
ANALYZE;
""" % {"i": instances, "e": endpoints, "f": first, "n": now_min, "blob": blob}
    pg.psql(db, sql)


def upgrade(tmp, binary, pg, db, url, mport, sport):
    """Starts a kagami on the version-1 store and waits for its upgrade;
    returns the seconds it took, as kagami logs them."""
    conf = os.path.join(tmp, "upgrade.lua")
    with open(conf, "w") as f:
        f.write("""return {
  listen = "127.0.0.1:%d",
  backends = { production = { url = "http://127.0.0.1:%d", master = true },
               newdb = { url = "http://127.0.0.1:%d" } },
  store = "%s",
  instance = "upgrader",
}
""" % (bench.free_port(), mport, sport, url))
    k = bench.Proc("upgrade", [binary, "run", conf], tmp)
    deadline = time.monotonic() + 3600
    while "connected, writing as instance" not in k.stderr_text():
        if not k.alive() or time.monotonic() > deadline:
            raise RuntimeError("the upgrade failed: %s" % k.stderr_text()[-2000:])
        time.sleep(0.5)
    k.stop()
    m = re.search(r"schema upgraded from version 1 to 2, .* in ([0-9.]+) s", k.stderr_text())
    if m is None:
        raise RuntimeError("no upgrade: %s" % k.stderr_text()[-2000:])
    pg.psql(db, "ANALYZE")
    return float(m.group(1))


def timed_report(binary, url, *args):
    t0 = time.monotonic()
    r = subprocess.run([binary, "report", "--db", url, "--format", "json"] + list(args),
                       capture_output=True, text=True, timeout=3600)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("report failed: %s" % r.stderr)
    return secs, r.stdout.count('"endpoint":')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=bench.KAGAMI)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--minutes", type=int, default=1440)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)  # the processes run in a temp dir
    with pg_write.fixture("pg_report", "fleet") as fx:
        if fx is None:
            return
        tmp, mport, sport, pg, url = fx
        pg_write.run_kagami(tmp, args.binary, "writer", mport, sport, '"%s"' % url, 1)
        t0 = time.monotonic()
        synthesize(pg, "fleet", args.instances, args.endpoints, args.minutes)
        made = time.monotonic() - t0
        upgraded = upgrade(tmp, args.binary, pg, "fleet", url, mport, sport)
        rows = int(pg.scalar("fleet", "SELECT count(*) FROM agg_backends"))
        hours = int(pg.scalar("fleet", "SELECT count(*) FROM agg_backends_hour"))
        size = int(pg.scalar("fleet", "SELECT pg_database_size('fleet')"))
        print("fleet report from PostgreSQL: %d instances x %d endpoints x 2 backends x "
              "%d minutes (%d histogram rows, database %.0f MiB, made in %.0f s)"
              % (args.instances, args.endpoints, args.minutes, rows, size / 2 ** 20, made))
        hsize = int(pg.scalar("fleet", "SELECT pg_total_relation_size('agg_requests_hour')"
                                       " + pg_total_relation_size('agg_backends_hour')"
                                       " + pg_total_relation_size('agg_locations_hour')"))
        print("  upgrade to schema version 2: %d hour rows of histograms built in %.1f s "
              "(hour tables %.1f MiB)" % (hours, upgraded, hsize / 2 ** 20))
        for label, extra in (("last hour, whole fleet", ["--since", "1h"]),
                             ("whole day, whole fleet", ["--since", "%dm" % args.minutes]),
                             ("whole day, one instance", ["--since", "%dm" % args.minutes,
                                                          "--instance", "i1"])):
            secs, n = timed_report(args.binary, url, *extra)
            print("  %-26s %7.2f s  (%d endpoints)" % (label, secs, n))


if __name__ == "__main__":
    main()
