"""A fleet's shared store (issue 15): kagami instances writing into one real
PostgreSQL 15 (tests/integration/pgserver.py), concurrently, through an
outage, starting at once on an empty database, and with the database away
from the start."""

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import pgserver
from backends import free_port
from harness import kagami_bin, sanitizer_env

pytestmark = pytest.mark.skipif(not pgserver.available(),
                                reason="postgresql-15 is not installed")


@pytest.fixture(scope="module")
def pg():
    with pgserver.PgServer() as server:
        yield server


_dbs = iter(range(1, 1000))


def new_db(pg):
    name = "t%d" % next(_dbs)
    return name, pg.create_database(name)


def start(make_backend, start_kagami, url, instance, admin=None, **extra):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    opts = {"store": url, "instance": instance, "ignore_headers": ["X-Backend"]}
    if admin:
        opts["admin"] = admin
    opts.update(extra)
    return start_kagami([production, newdb], options=opts)


def traffic(k, n, tag):
    """n requests, every third one differing (/diff differs on newdb)."""
    for i in range(n):
        path = "/diff?%s=%d" % (tag, i) if i % 3 == 0 else "/text/3?%s=%d" % (tag, i)
        assert k.get(path).status == 200


def counted(pg, db, instance):
    row = pg.psql(db, "SELECT coalesce(sum(compared), 0), coalesce(sum(differing), 0) "
                      "FROM agg_requests WHERE instance = '%s'" % instance)[0]
    return int(row[0]), int(row[1])


def wait_counted(pg, db, instance, want, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = counted(pg, db, instance)
        except RuntimeError:  # the schema is not there yet
            if time.monotonic() > deadline:
                raise
            got = (0, 0)
        if got[0] >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_three_instances_write_concurrently(pg, make_backend, start_kagami):
    db, url = new_db(pg)
    ks = [start(make_backend, start_kagami, url, name) for name in ("a", "b", "c")]
    threads = [threading.Thread(target=traffic, args=(k, 30 + 10 * i, "i%d" % i))
               for i, k in enumerate(ks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (k, name) in enumerate(zip(ks, ("a", "b", "c"))):
        entries = k.wait_log(30 + 10 * i)
        assert k.stop() == 0
        differing = sum(1 for e in entries if not e["equal"])
        # every compared request counted, per instance, exactly
        assert counted(pg, db, name) == (len(entries), differing)
        # the differing ones are kept one by one, as their diff log record
        kept = int(pg.scalar(db, "SELECT count(*) FROM results WHERE instance = '%s' "
                                 "AND outcome <> 0" % name))
        assert kept == differing
        assert "connected, writing as instance %s" % name in k.stderr()
    assert pg.psql(db, "SELECT DISTINCT instance FROM agg_backends ORDER BY 1") == \
        [["a"], ["b"], ["c"]]
    # latency per backend, as the SQLite store's histogram blob
    assert int(pg.scalar(db, "SELECT count(*) FROM agg_backends WHERE "
                             "length(latency) > 1")) >= 6
    assert int(pg.scalar(db, "SELECT count(*) FROM kagami_meta")) == 1


def test_an_outage_loses_no_request_and_no_count(pg, make_backend, start_kagami):
    """PostgreSQL stopped mid-run and started again: clients all get the
    master's answers, the per-minute counts of the gap are kept in memory
    and written when it is back, one log line each way."""
    db, url = new_db(pg)
    k = start(make_backend, start_kagami, url, "solo")
    traffic(k, 12, "before")
    wait_counted(pg, db, "solo", 12)
    pg.stop("fast")
    try:
        traffic(k, 12, "during")
        time.sleep(2.5)  # a flush attempt meets the closed connection
    finally:
        pg.start()
    traffic(k, 12, "after")
    got = wait_counted(pg, db, "solo", 36)
    entries = k.wait_log(36)
    assert k.stop() == 0
    err = k.stderr()
    assert got[0] == 36, (got, err[-2000:])
    assert len(re.findall(r"connection lost", err)) == 1, err[-3000:]
    assert len(re.findall(r"back after \d+ s", err)) == 1, err[-3000:]
    # the results kept one by one during the gap are the only loss, counted
    m = re.search(r"(\d+) results counted in the database, (\d+) dropped, "
                  r"(\d+) kept results not written", err)
    assert m and int(m.group(1)) == 36 and int(m.group(2)) == 0, err[-2000:]
    # kept one by one: the 12 differing (4 per 12 requests) and the first
    # store_keep_equal_per_minute (2) equal ones per endpoint and minute
    minutes = {}
    for e in entries:
        if e["equal"]:
            key = (e["endpoint"], e["ts"][:16])  # "YYYY-MM-DDTHH:MM"
            minutes[key] = minutes.get(key, 0) + 1
    offered = 12 + sum(min(2, n) for n in minutes.values())
    kept = int(pg.scalar(db, "SELECT count(*) FROM results"))
    assert kept + int(m.group(3)) == offered, (kept, m.group(3), minutes)
    # the hour rows written after the reconnect are still the minute rows' sums
    assert hour_mismatches(pg, db) == []
    assert pg.scalar(db, "SELECT sum(compared) FROM agg_requests_hour") == "36"


def test_instances_starting_at_once_create_the_schema_once(pg, make_backend,
                                                           start_kagami):
    db, url = new_db(pg)
    ks = [start(make_backend, start_kagami, url, name) for name in ("x", "y")]
    for k in ks:
        traffic(k, 3, "s")
    for name in ("x", "y"):
        assert wait_counted(pg, db, name, 3)[0] == 3
    for k in ks:
        assert k.stop() == 0
        assert "cannot connect" not in k.stderr()
    assert pg.psql(db, "SELECT key, value FROM kagami_meta") == [["schema_version", "2"]]


def test_database_away_at_start(make_backend, start_kagami):
    """Unreachable at start: kagami proxies anyway, says so once, retries;
    the password is in no log line."""
    port = free_port()  # nothing listens there
    admin = free_port()
    url = "postgresql://kagami:hunter2@127.0.0.1:%d/fleet" % port
    k = start(make_backend, start_kagami, url, "lonely", admin=admin)
    traffic(k, 6, "x")
    deadline = time.monotonic() + 10
    while "cannot connect" not in k.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin).read().decode()
    assert "kagami_store_connected 0" in metrics
    assert k.stop() == 0
    err = k.stderr()
    assert len(re.findall(r"cannot connect", err)) == 1, err[-2000:]
    assert "hunter2" not in err
    assert "postgresql://kagami:***@127.0.0.1:%d/fleet" % port in err


def test_check_reads_the_url_from_the_environment(tmp_path):
    cfg = tmp_path / "k.lua"
    cfg.write_text('return {\n  backends = { p = { url = "http://127.0.0.1:1", master = true } },\n'
                   '  store = { url_env = "KAGAMI_TEST_STORE_URL" },\n'
                   '  instance = "web-1",\n}\n')
    env = sanitizer_env()
    env.pop("KAGAMI_TEST_STORE_URL", None)
    r = subprocess.run([str(kagami_bin()), "check", str(cfg)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1
    assert "k.lua:3: store: url_env: environment variable KAGAMI_TEST_STORE_URL " \
           "is not set" in r.stderr, r.stderr
    env["KAGAMI_TEST_STORE_URL"] = "postgresql://kagami:s3cret@db.internal/fleet"
    r = subprocess.run([str(kagami_bin()), "check", str(cfg)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout + r.stderr


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(admin, name):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin).read().decode()
    m = re.search(r"^%s (\d+)" % name, text, re.M)
    return int(m.group(1)) if m else None


def test_a_slow_database_fills_the_queue_and_drops(pg, make_backend, start_kagami):
    """A transaction holding a lock on the aggregates blocks the writer:
    its queue fills, batches are dropped and counted, memory stays
    bounded, clients are unaffected; when the lock goes, writing resumes
    and every compared request is either counted or counted as dropped."""
    db, url = new_db(pg)
    admin = free_port()
    k = start(make_backend, start_kagami, url, "slowdb", admin=admin)
    traffic(k, 10, "warm")
    wait_counted(pg, db, "slowdb", 10)
    holder = subprocess.Popen(
        ["psql", "-X", "-q", pg.url(db), "-c",
         "BEGIN; LOCK TABLE agg_requests IN ACCESS EXCLUSIVE MODE; "
         "SELECT pg_sleep(14); COMMIT;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5)  # the writer's next flush now waits on the lock
        r = subprocess.run(["wrk", "-t1", "-c16", "-d7s",
                            "http://127.0.0.1:%d/text/3" % k.port],
                           capture_output=True, text=True, timeout=60)
        assert "Non-2xx" not in r.stdout and "Socket errors" not in r.stdout, r.stdout
        dropped = metric(admin, "kagami_store_dropped_total")
        queue = metric(admin, "kagami_store_queue")
        assert dropped > 0, r.stdout
        assert queue <= 20000
        assert rss_kib(k.proc.pid) < 600 * 1024  # ASan build: bounded, not tiny
    finally:
        holder.wait(60)
    stats_deadline = time.monotonic() + 20
    while time.monotonic() < stats_deadline and metric(admin, "kagami_store_queue") > 0:
        time.sleep(0.2)
    assert k.stop() == 0
    err = k.stderr()
    m = re.search(r"(\d+) compared", err)
    compared = int(m.group(1))
    got = counted(pg, db, "slowdb")[0]
    m = re.search(r"(\d+) results counted in the database, (\d+) dropped", err)
    assert m, err[-2000:]
    assert got == int(m.group(1))
    assert got + int(m.group(2)) == compared, (got, m.group(2), compared)
    assert "connection lost" not in err  # slow is not lost


FEED_NOISE = {"$.meta.ts", "$.meta.request_id", "$.items[0].updated_at",
              "$.items[1].updated_at"}  # what differs between any two /api/feed answers


def fetch(k, url):
    assert k.get(url).status == 200
    [e] = k.wait_log_url(url)
    return e


def fleet_noise(admin):
    doc = json.loads(urllib.request.urlopen(
        "http://127.0.0.1:%d/api/noise" % admin).read().decode())
    return next((e for e in doc["endpoints"] if "/api/feed" in e["endpoint"]), None)


def test_a_fleet_shares_one_noise_model(pg, make_backend, start_kagami):
    """Noise learned only from instance A's traffic hides the same noise on
    instance B, which saw no noise pair at all; a real change in the same
    answer is still reported on B, and B's evidence shows the fleet's part."""
    db, url = new_db(pg)
    noise = {"learn": True, "threshold": 0.2, "min_pairs": 10}
    a = start(make_backend, start_kagami, url, "a", noise=dict(noise, shadow_twice=1.0))
    admin = free_port()
    b = start(make_backend, start_kagami, url, "b", admin=admin, noise=noise)

    e = fetch(b, "/api/feed/500")  # nothing learned anywhere yet: reported
    assert not e["equal"] and {d["where"] for d in e["differences"]} == FEED_NOISE

    for i in range(10):  # ten noise pairs, on A only
        assert a.get("/api/feed/%d" % i).status == 200
    a.wait_log(10)
    deadline = time.monotonic() + 20
    ep = fleet_noise(admin)
    while not (ep and ep["suppressed"] == len(FEED_NOISE)):
        assert time.monotonic() < deadline, ep
        time.sleep(0.3)
        ep = fleet_noise(admin)
    assert ep["pairs"] == ep["fleet_pairs"] == 10  # none of them B's own
    assert {l["location"] for l in ep["locations"] if l["suppressed"]} == FEED_NOISE
    assert all(l["fleet_differed"] == l["differed"] for l in ep["locations"])

    e = fetch(b, "/api/feed/501")
    assert e["equal"] is True and set(e["suppressed"]) == FEED_NOISE, e
    e = fetch(b, "/api/feed/502?real=1")  # a real change next to the noise
    assert e["equal"] is False
    assert [(d["where"], d["master"], d["shadow"]) for d in e["differences"]] == \
        [("$.price", "120", "125")]
    assert set(e["suppressed"]) == FEED_NOISE
    assert b.stop() == 0 and a.stop() == 0
    assert "from the fleet's 10 pairs" in b.stderr(), b.stderr()[-2000:]
    # only A had evidence of its own to publish
    assert pg.psql(db, "SELECT DISTINCT instance FROM noise") == [["a"]]
    assert pg.scalar(db, "SELECT n FROM noise WHERE location = ''") == "10"


def report(*args):
    r = subprocess.run([str(kagami_bin()), "report"] + list(args), capture_output=True,
                       text=True, env=sanitizer_env(), timeout=60)
    return r


def test_one_report_for_the_fleet(pg, make_backend, start_kagami):
    """kagami report --db URL: the whole fleet's counts, latencies and
    locations, or one instance's with --instance, read from PostgreSQL."""
    db, url = new_db(pg)
    admin = free_port()
    ks = [start(make_backend, start_kagami, url, "east", admin=admin),
          start(make_backend, start_kagami, url, "west")]
    for i, k in enumerate(ks):
        traffic(k, 12 + 6 * i, "r%d" % i)
    assert wait_counted(pg, db, "east", 12) == (12, 4)
    assert wait_counted(pg, db, "west", 18) == (18, 6)

    # the dashboard's API of any instance shows the fleet, or one instance
    def api(path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (admin, path)) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
    status, doc = api("/api/endpoints")
    assert status == 200 and (doc["compared"], doc["differing"]) == (30, 10), doc
    status, doc = api("/api/endpoints?instance=west&since=1h")
    assert status == 200 and (doc["compared"], doc["differing"]) == (18, 6), doc
    status, doc = api("/api/timeseries?bucket=60&since=1h")
    assert status == 200 and sum(b["compared"] for b in doc["buckets"]) == 30, doc
    # kept results, from every instance or one, as from a SQLite store
    status, doc = api("/api/results?differing=1&limit=100")
    assert status == 200 and len(doc["results"]) == 10, doc
    status, doc = api("/api/results?differing=1&instance=west&limit=4")
    assert status == 200 and len(doc["results"]) == 4 and doc["next_before"], doc
    first = doc["results"][0]
    assert first["differences"] >= 1 and first["locations"], first
    assert [b["role"] for b in first["backends"]] == ["master", "shadow"]
    status, doc = api("/api/results?differing=1&instance=west&limit=4&before=" +
                      first["id"])
    assert status == 200 and first["id"] not in [r["id"] for r in doc["results"]]
    status, one = api("/api/results/%s?instance=west" % first["id"])
    assert status == 200 and one["id"] == first["id"] and one["equal"] is False, one
    assert one["differences"] and one["diff"]
    assert one["backends"][0]["name"] == "production" and one["backends"][0]["body"] is None
    status, text = api("/api/results/nope")
    assert status == 404, text

    for k in ks:
        assert k.stop() == 0

    r = report("--db", url, "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["compared"], rep["differing"]) == (30, 10)
    eps = {e["endpoint"]: e for e in rep["endpoints"]}
    diff_ep = next(e for name, e in eps.items() if "/diff" in name)
    assert (diff_ep["compared"], diff_ep["differing"]) == (10, 10)
    assert diff_ep["top_differences"], diff_ep  # locations came across
    master = next(b for b in diff_ep["backends"] if b["role"] == "master")
    assert master["name"] == "production" and master["samples"] == 10
    assert master["p50_ms"] is not None  # histograms of both instances merged

    r = report("--db", url, "--instance", "west", "--format", "json")
    assert r.returncode == 0, r.stderr
    west = json.loads(r.stdout)
    assert (west["compared"], west["differing"], west["instance"]) == (18, 6, "west")

    r = report("--db", url, "--instance", "nowhere")
    assert r.returncode == 2 and "from instance nowhere" in r.stdout, r.stdout

    # one kept result, as kagami show prints it
    rid = pg.scalar(db, "SELECT id FROM results WHERE instance = 'east' AND outcome <> 0 "
                        "ORDER BY id LIMIT 1")
    r = subprocess.run([str(kagami_bin()), "show", rid, "--db", url, "--format", "json"],
                       capture_output=True, text=True, env=sanitizer_env())
    assert r.returncode == 0, r.stderr
    one = json.loads(r.stdout)
    assert one["id"] == rid and one["differences"], one
    r = subprocess.run([str(kagami_bin()), "show", rid, "--db", url, "--instance", "east"],
                       capture_output=True, text=True, env=sanitizer_env())
    assert r.returncode == 0 and rid in r.stdout, r.stderr
    r = subprocess.run([str(kagami_bin()), "show", rid, "--db", url, "--instance", "west"],
                       capture_output=True, text=True, env=sanitizer_env())
    assert r.returncode == 2 and "no result %s" % rid in r.stderr, r.stderr

    # a person's table, the url's password masked
    pwurl = url.replace("://%s@" % pgserver.USER, "://%s:hunter2@" % pgserver.USER)
    r = report("--db", pwurl, "--since", "1h")
    assert r.returncode == 0, r.stderr
    assert "30 requests compared, 10 differing" in r.stdout, r.stdout
    assert "hunter2" not in r.stdout and ":***@" in r.stdout


# --- hour rows (schema version 2) ----------------------------------------------------

# Each hour table against its minute table summed per instance, part,
# endpoint, hour and key: (minute table, hour table, key columns, sums).
HOUR_SUMS = [
    ("agg_requests", "agg_requests_hour", "",
     {"compared": "sum(compared)", "differing": "sum(differing)", "errors": "sum(errors)",
      "first_ts": "min(first_ts)", "last_ts": "max(last_ts)"}),
    ("agg_backends", "agg_backends_hour", ", backend",
     {"pos": "min(pos)", "errors": "sum(errors)",
      "role": "CASE WHEN bool_or(role = 'master') THEN 'master' ELSE 'shadow' END"}),
    ("agg_locations", "agg_locations_hour", ", location", {"count": "sum(count)"}),
]


def hour_mismatches(pg, db):
    """Hour rows that are not the sums of their minute rows (histograms
    aside), and minute rows of an hour without its hour row."""
    bad = []
    for minute, hour, key, sums in HOUR_SUMS:
        cols = ", ".join("%s AS %s" % (expr, name) for name, expr in sums.items())
        differ = " OR ".join("m.%s IS DISTINCT FROM h.%s" % (c, c) for c in sums)
        bad += pg.psql(db, "SELECT '%s', m.*, h.* FROM (SELECT instance, part, endpoint,"
                           " floor(minute / 60.0)::bigint AS hour%s, %s FROM %s"
                           " GROUP BY 1, 2, 3, 4%s) m FULL JOIN %s h"
                           " USING (instance, part, endpoint, hour%s) WHERE %s"
                           % (hour, key, cols, minute, ", 5" if key else "", hour, key,
                              differ))
    return bad


def hour_rows(pg, db):
    """Every hour row, histograms as their bytes."""
    return [pg.psql(db, "SELECT * FROM agg_requests_hour ORDER BY 1, 2, 3, 4"),
            pg.psql(db, "SELECT instance, part, endpoint, hour, backend, role, pos, errors,"
                        " encode(latency, 'hex') FROM agg_backends_hour ORDER BY 1, 2, 3, 4, 5"),
            pg.psql(db, "SELECT * FROM agg_locations_hour ORDER BY 1, 2, 3, 4, 5")]


def to_version_1(pg, db):
    """The store as a kagami of schema version 1 left it: minute rows only."""
    pg.psql(db, "BEGIN; UPDATE kagami_meta SET value = '1' WHERE key = 'schema_version';"
                " DROP TABLE agg_requests_hour, agg_backends_hour, agg_locations_hour; COMMIT")


def start_migrating(make_backend, start_kagami, pg, db, url, names):
    """Starts an instance per name on a version-1 store at once (the
    schema's advisory lock held meanwhile, so that every one is waiting
    for it when it is let go); returns them once every one writes, and how
    many logged the upgrade."""
    holder = subprocess.Popen(["psql", "-X", "-q", url, "-c",
                               "SELECT pg_advisory_lock(726311547), pg_sleep(8)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND %s granted"
    try:
        while pg.scalar(db, locks % "") != "1":
            assert holder.poll() is None
            time.sleep(0.05)
        ks = [start(make_backend, start_kagami, url, name) for name in names]
        while pg.scalar(db, locks % "NOT") != str(len(ks)):  # every one waits
            assert holder.poll() is None, [k.stderr()[-2000:] for k in ks]
            time.sleep(0.05)
    finally:
        holder.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not all("connected, writing as instance" in k.stderr() for k in ks):
        assert time.monotonic() < deadline, [k.stderr()[-2000:] for k in ks]
        time.sleep(0.2)
    upgrades = sum(k.stderr().count("schema upgraded from version 1 to 2") for k in ks)
    assert pg.psql(db, "SELECT key, value FROM kagami_meta") == [["schema_version", "2"]]
    return ks, upgrades


def write_fleet(pg, db, url, make_backend, start_kagami):
    """Instances a (restarted once: two processes, two parts) and b write;
    returns the requests each was sent."""
    a = start(make_backend, start_kagami, url, "a")
    b = start(make_backend, start_kagami, url, "b")
    traffic(a, 9, "a1")
    traffic(b, 12, "b1")
    assert wait_counted(pg, db, "a", 9)[0] == 9
    assert a.stop() == 0
    a = start(make_backend, start_kagami, url, "a")  # a restart in mid-hour
    traffic(a, 6, "a2")
    assert wait_counted(pg, db, "a", 15)[0] == 15
    assert wait_counted(pg, db, "b", 12)[0] == 12
    for k in (a, b):
        assert k.stop() == 0
    return {"a": 15, "b": 12}


def test_hour_rows_of_a_restarted_instance(pg, make_backend, start_kagami):
    """Each process writes its own hour rows with its minute rows: a
    restart in mid-hour loses nothing and counts nothing twice, and the
    report over whole hours reads them."""
    db, url = new_db(pg)
    sent = write_fleet(pg, db, url, make_backend, start_kagami)
    assert int(pg.scalar(db, "SELECT count(DISTINCT part) FROM agg_requests_hour "
                             "WHERE instance = 'a'")) == 2
    assert hour_mismatches(pg, db) == []
    for name, n in sent.items():
        assert pg.psql(db, "SELECT sum(compared), sum(differing) FROM agg_requests_hour"
                           " WHERE instance = '%s'" % name) == [[str(n), str(n // 3)]]
    # --since 3h: the current hour comes from the hour rows alone
    r = report("--db", url, "--since", "3h", "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["compared"], rep["differing"]) == (27, 9), rep
    diff_ep = next(e for e in rep["endpoints"] if "/diff" in e["endpoint"])
    master = next(b for b in diff_ep["backends"] if b["role"] == "master")
    assert master["samples"] == 9 and master["p50_ms"] is not None, diff_ep
    assert diff_ep["top_differences"], diff_ep


def report_doc(url, since):
    r = report("--db", url, "--since", since, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    doc.pop("since", None)
    return doc


def test_a_version_1_store_is_migrated_once(pg, make_backend, start_kagami):
    """Two instances starting at once on a store of schema version 1: one
    builds the hour rows from the minute rows (histograms merged in C),
    byte for byte what the writers had written themselves; and the report
    over whole hours (hour rows) equals the report over the same minutes
    (minute rows)."""
    db, url = new_db(pg)
    write_fleet(pg, db, url, make_backend, start_kagami)
    written = hour_rows(pg, db)
    to_version_1(pg, db)
    ks, upgrades = start_migrating(make_backend, start_kagami, pg, db, url, ("m1", "m2"))
    for k in ks:
        assert k.stop() == 0
    assert upgrades == 1, [k.stderr()[-2000:] for k in ks]
    assert hour_rows(pg, db) == written
    assert hour_mismatches(pg, db) == []

    # the same rows moved to minute 10 of the hour before last, migrated again
    hour = int(time.time() // 3600)
    first = int(pg.scalar(db, "SELECT min(minute) FROM agg_requests"))
    d = (hour - 2) * 60 + 10 - first
    pg.psql(db, "BEGIN; UPDATE agg_requests SET minute = minute + %(d)d,"
                " first_ts = first_ts + %(d)d * 60, last_ts = last_ts + %(d)d * 60;"
                " UPDATE agg_backends SET minute = minute + %(d)d;"
                " UPDATE agg_locations SET minute = minute + %(d)d; COMMIT" % {"d": d})
    # and one histogram damaged: left out of the hour as the report leaves
    # it out of the minutes
    pg.psql(db, "UPDATE agg_backends SET latency = '\\x027a7a'::bytea"
                " WHERE ctid = (SELECT ctid FROM agg_backends WHERE role = 'shadow' LIMIT 1)")
    to_version_1(pg, db)
    ks, upgrades = start_migrating(make_backend, start_kagami, pg, db, url, ("m3",))
    assert ks[0].stop() == 0 and upgrades == 1
    assert "(1 of them damaged, left out)" in ks[0].stderr(), ks[0].stderr()[-2000:]
    assert hour_mismatches(pg, db) == []
    # since minute 1 of that hour: its minutes from the minute rows; since
    # 4 hours ago: that hour whole, from the hour rows
    by_minutes = report_doc(url, "%ds" % int(time.time() - ((hour - 2) * 3600 + 60)))
    by_hours = report_doc(url, "4h")
    assert by_minutes["compared"] == 27
    assert by_hours == by_minutes


def test_report_on_a_database_without_a_store(pg, tmp_path):
    db, url = new_db(pg)
    r = report("--db", url)
    assert r.returncode == 1
    assert "not a kagami store (no kagami_meta table" in r.stderr, r.stderr
    pg.psql(db, "CREATE TABLE kagami_meta (key text PRIMARY KEY, value text NOT NULL);"
                "INSERT INTO kagami_meta VALUES ('schema_version', '99')")
    r = report("--db", url)
    assert r.returncode == 1 and "schema version 99; this kagami reads version 2" in r.stderr
    r = report("--db", "postgresql://kagami:pw@127.0.0.1:%d/fleet" % free_port())
    assert r.returncode == 1 and "cannot connect" in r.stderr, r.stderr
    assert "pw@" not in r.stderr
    r = subprocess.run([str(kagami_bin()), "show", "abc", "--db", url], capture_output=True,
                       text=True, env=sanitizer_env())
    assert r.returncode == 1 and "schema version 99" in r.stderr, r.stderr
    # --instance means nothing for a SQLite store
    r = report("--db", str(tmp_path / "k.db"), "--instance", "x")
    assert r.returncode == 1 and "only a PostgreSQL store holds several" in r.stderr


@pytest.mark.parametrize("store, line, message", [
    ('{ url_file = "%(dir)s/absent.url" }', 3, "url_file: %(dir)s/absent.url: No such file"),
    ('{ url_file = "%(dir)s/empty.url" }', 3, "url_file: %(dir)s/empty.url is empty"),
    ('{ url_file = "%(dir)s/mysql.url" }', 3, "expected a postgresql:// url"),
    ('{ url_env = "KAGAMI_TEST_STORE_URL", extra = 1 }', 3, "extra"),
    ('{ }', 3, 'expected { url_env = "NAME" } or { url_file = "PATH" }'),
])
def test_store_url_forms_refused_with_their_line(tmp_path, store, line, message):
    (tmp_path / "empty.url").write_text("\n")
    (tmp_path / "mysql.url").write_text("mysql://root@db/x\n")
    cfg = tmp_path / "k.lua"
    cfg.write_text('return {\n  backends = { p = { url = "http://127.0.0.1:1", master = true } },\n'
                   '  store = %s,\n}\n' % (store % {"dir": tmp_path}))
    r = subprocess.run([str(kagami_bin()), "check", str(cfg)], capture_output=True,
                       text=True, env=sanitizer_env())
    assert r.returncode == 1, r.stdout
    assert "k.lua:%d: store" % line in r.stderr, r.stderr
    assert message % {"dir": tmp_path} in r.stderr, r.stderr


def test_url_file_and_instance(tmp_path):
    (tmp_path / "store.url").write_text("postgresql://kagami:pw@db.internal/fleet\n")
    cfg = tmp_path / "k.lua"
    for instance, ok in (('"web-1"', True), ('""', False), ("42", False)):
        cfg.write_text('return {\n  backends = { p = { url = "http://127.0.0.1:1", master = true } },\n'
                       '  store = { url_file = "%s/store.url" },\n  instance = %s,\n}\n'
                       % (tmp_path, instance))
        r = subprocess.run([str(kagami_bin()), "check", str(cfg)], capture_output=True,
                           text=True, env=sanitizer_env())
        assert (r.returncode == 0) == ok, r.stderr
        assert "pw@" not in r.stdout + r.stderr
        if not ok:
            assert "k.lua:4: instance: expected a name" in r.stderr, r.stderr
