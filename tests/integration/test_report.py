"""Issue 4 points 1 and 2: the results store written by a real run, read by
`kagami report` and `kagami show` (golden outputs, timings and ids
normalised), by Python's sqlite3 while kagami runs (WAL), and the clear
errors kagami gives at start for a store it cannot use."""

import json
import os
import pty
import re
import socket
import sqlite3
import subprocess
import time

import pytest

from backends import free_port
from harness import kagami_bin, render_config, run_cli, sanitizer_env, \
    sanitizer_reports

SECRET = "Bearer s3cr3t-t0ken"


# --- helpers ----------------------------------------------------------------
def store_path(k):
    return k.workdir / "kagami.db"


def stored_count(path):
    """Results counted in the store (every compared request, in the
    aggregates), read by another process's connection."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return db.execute("SELECT coalesce(sum(compared), 0) FROM agg_requests").fetchone()[0]
    finally:
        db.close()


def wait_stored(path, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            n = stored_count(path)
        except sqlite3.OperationalError:
            n = 0  # not created yet
        if n >= count:
            return n
        if time.monotonic() > deadline:
            raise AssertionError("store has %d results after %.0fs, wanted %d"
                                 % (n, timeout, count))
        time.sleep(0.05)


def normalise(text, db=None):
    """Timings (in backend rows) become #.## keeping column widths, the p90
    ratio x#.##; ids and times go."""
    def row(m):
        line = re.sub(r"p90 x\d+\.\d\d", "p90 x#.##", m.group(0))
        return re.sub(r"( *)\d+\.\d\d\b",
                      lambda n: " " * (len(n.group(0)) - 4) + "#.##", line)
    text = re.sub(r"^.* (master|shadow) .*$", row, text, flags=re.M)
    text = re.sub(r"^result [0-9a-f]+  \S+$", "result ID  TIME", text,
                  flags=re.M)
    if db is not None:
        text = text.replace(str(db), "STORE")
    return text


def traffic(k):
    """The run the golden outputs describe: 10 compared requests on three
    endpoints, 5 of them differing."""
    with k.connect() as c:
        for _ in range(3):
            assert c.request("GET", "/diff", headers=[
                ("Authorization", SECRET), ("X-Secret", "hush-hush"),
                ("X-Trace", "visible")]).status == 200
        for _ in range(4):
            assert c.request("GET", "/text/3").status == 200
        for _ in range(2):
            assert c.request("GET", "/api/7?quiet=1&real=1").status == 200
        assert c.request("GET", "/api/8?quiet=1").status == 200


@pytest.fixture
def run(make_backend, start_kagami):
    """A finished run: production vs newdb, the traffic above, stopped."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb],
                     options={"redact_headers": ["X-Secret"]})
    traffic(k)
    wait_stored(store_path(k), 10)
    assert k.stop() == 0
    return k


def report(*args):
    p = run_cli("report", *args)
    return p


def only_id(db, url):
    conn = sqlite3.connect(str(db))
    try:
        rows = conn.execute("SELECT id FROM results WHERE url = ? ORDER BY id",
                            (url,)).fetchall()
    finally:
        conn.close()
    return rows[0][0]


# --- report -----------------------------------------------------------------
REPORT_TEXT = """\
store STORE: 10 requests compared, 5 differing (50.0%), 0 failed (0.0%)

ENDPOINT       COMPARED  DIFFERING    RATE  BACKEND     ROLE      P50 MS    P99 MS  ERRORS  FLAG
GET /diff             3          3  100.0%  production  master      #.##      #.##       0
                                            newdb       shadow      #.##      #.##       0  p90 x#.##
  differing at      3  line 3: price: #.# -> price: #.#
GET /api/:id          3          2   66.7%  production  master      #.##      #.##       0
                                            newdb       shadow      #.##      #.##       0  p90 x#.##
  differing at      2  $.price
GET /text/:id         4          0    0.0%  production  master      #.##      #.##       0
                                            newdb       shadow      #.##      #.##       0  p90 x#.##
"""


def test_report_text_golden(run):
    db = store_path(run)
    p = report("--db", db)
    assert p.returncode == 0, p.stderr
    assert normalise(p.stdout, db) == REPORT_TEXT
    # The same through --config, which names the store.
    p = report("--config", run.config)
    assert p.returncode == 0, p.stderr
    assert normalise(p.stdout, db) == REPORT_TEXT


def test_report_json(run):
    db = store_path(run)
    p = report("--db", db, "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["store"] == str(db)
    assert (doc["compared"], doc["differing"]) == (10, 5)
    assert doc["regression_factor"] == 1.5
    eps = doc["endpoints"]
    assert [e["endpoint"] for e in eps] == ["GET /diff", "GET /api/:id",
                                            "GET /text/:id"]
    diff, api, text = eps
    assert (diff["compared"], diff["differing"]) == (3, 3)
    assert diff["difference_rate"] == 1.0
    assert diff["top_differences"] == [{"location": "line 3: price: #.# -> price: #.#",
                                        "count": 3}]
    assert api["top_differences"] == [{"location": "$.price", "count": 2}]
    assert text["top_differences"] == []
    assert text["differing"] == 0 and text["attention"] == 0
    for e in eps:
        assert e["regression"] is False
        names = [(b["name"], b["role"]) for b in e["backends"]]
        assert names == [("production", "master"), ("newdb", "shadow")]
        for b in e["backends"]:
            assert b["samples"] == e["compared"] and b["errors"] == 0
            assert 0 <= b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"] < 5000
        assert e["backends"][1]["regression"] is False  # under 20 samples


def test_report_keeps_locations_apart(make_backend, start_kagami):
    """Two sibling elements that differ are two rows, each counted: one
    may be noise and the other a real change, and merging them into
    /html/body/p/text() would hide which is which (issue 12)."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    with k.connect() as c:
        for _ in range(3):
            assert c.request("GET", "/precise/html?real=1").status == 200
    wait_stored(store_path(k), 3)
    assert k.stop() == 0
    p = report("--db", store_path(k), "--format", "json")
    assert p.returncode == 0, p.stderr
    (e,) = json.loads(p.stdout)["endpoints"]
    tops = {t["location"]: t["count"] for t in e["top_differences"]}
    assert tops == {"/html/body/p[1]/text()": 3, "/html/body/p[2]/text()": 3}
    assert e["locations"] == 2
    p = report("--db", store_path(k))
    assert "/html/body/p[1]/text()" in p.stdout
    assert "/html/body/p[2]/text()" in p.stdout
    assert "/html/body/p/text()" not in p.stdout


def test_report_failed_shadow_is_not_a_difference(make_backend, start_kagami):
    """A refused shadow makes errors, reported apart: a JSON endpoint whose
    shadow is down is 0% differing and 100% failed, not 100% differing."""
    production = make_backend("production")
    dead = make_backend("newdb", fault="refuse")
    k = start_kagami([production, dead])
    with k.connect() as c:
        for i in range(4):
            assert c.request("GET", "/api/%d" % i).status == 200
    wait_stored(store_path(k), 4)
    assert k.stop() == 0
    p = report("--db", store_path(k), "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    (e,) = r["endpoints"]
    assert (e["compared"], e["differing"], e["errors"]) == (4, 0, 4)
    assert e["difference_rate"] == 0 and e["error_rate"] == 1.0
    assert e["top_differences"] == []
    shadow = e["backends"][1]
    assert shadow["name"] == "newdb" and shadow["errors"] == 4
    assert shadow["error_rate"] == 1.0
    p = report("--db", store_path(k))
    assert "4 requests compared, 0 differing (0.0%), 4 failed (100.0%)" in p.stdout


def test_report_filters_and_exit_codes(run, tmp_path):
    db = store_path(run)
    p = report("--db", db, "--endpoint", "/api/*", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert [e["endpoint"] for e in json.loads(p.stdout)["endpoints"]] == \
        ["GET /api/:id"]
    p = report("--db", db, "--endpoint", "GET /t*", "--since", "1h")
    assert p.returncode == 0, p.stderr
    assert "GET /text/:id" in p.stdout and "/diff" not in p.stdout
    # Nothing matched: exit 2, said on stdout.
    p = report("--db", db, "--endpoint", "POST *")
    assert p.returncode == 2
    assert "no compared requests" in p.stdout
    time.sleep(1.1)
    p = report("--db", db, "--since", "1s")
    assert p.returncode == 2
    # Usage and store errors: exit 1 with a message.
    for args, word in [(["--since", "soon"], "--since"),
                       (["--format", "xml"], "--format"),
                       (["--bogus"], "--bogus"),
                       (["--db"], "--db")]:
        p = report("--db", db, *args)
        assert p.returncode == 1, args
        assert word in p.stderr, p.stderr
    missing = tmp_path / "missing.db"
    p = report("--db", missing)
    assert p.returncode == 1 and str(missing) in p.stderr
    assert "no such file" in p.stderr
    assert report("--help").returncode == 0


def test_latency_regression_comes_first(make_backend, start_kagami):
    """A shadow whose p90 is over 1.5x the master's, with 20+ samples each,
    is flagged, and its endpoint leads the report even though another one
    differs more."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    with k.connect() as c:
        for _ in range(3):
            assert c.request("GET", "/diff").status == 200
        for _ in range(25):  # the shadow waits 30 ms on this one
            assert c.request("GET", "/slowpage/30").status == 200
    wait_stored(store_path(k), 28)
    assert k.stop() == 0
    p = report("--db", store_path(k), "--format", "json")
    assert p.returncode == 0, p.stderr
    eps = json.loads(p.stdout)["endpoints"]
    assert [e["endpoint"] for e in eps] == ["GET /slowpage/:id", "GET /diff"]
    slow = eps[0]
    assert slow["regression"] is True and slow["differing"] == 0
    shadow = slow["backends"][1]
    assert shadow["name"] == "newdb" and shadow["regression"] is True
    assert shadow["p90_ms"] >= 30 and shadow["p90_ratio"] > 1.5
    p = report("--db", store_path(k))
    row = [line for line in p.stdout.splitlines() if " shadow " in line][0]
    assert re.search(r"p90 x\d+\.\d\d SLOWER$", row), p.stdout


# --- show -------------------------------------------------------------------
SHOW_TEXT = """\
result ID  TIME
GET /diff
endpoint GET /diff, compared as text: DIFFERS

request headers
  Host: 127.0.0.1
  Authorization: [redacted]
  X-Secret: [redacted]
  X-Trace: visible

  BACKEND     ROLE       STATUS  ELAPSED MS       BYTES  RESULT
  production  master        200        #.##          50
  newdb       shadow        200        #.##          50  differs

differences
  line 3 (newdb)
    - price: 12.50
    + price: 12.49

diff
--- production
+++ newdb
@@ -1,4 +1,4 @@
 header line
 item: teapot
-price: 12.50
+price: 12.49
 footer line
"""

SHOW_JSON_TEXT = """\
result ID  TIME
GET /api/7?quiet=1&real=1
endpoint GET /api/:id, compared as json: DIFFERS

request headers
  Host: 127.0.0.1

  BACKEND     ROLE       STATUS  ELAPSED MS       BYTES  RESULT
  production  master        200        #.##         213
  newdb       shadow        200        #.##         213  differs

differences
  $.price (newdb)
    - 120
    + 125

diff
--- production
+++ newdb
@@ $.price @@
-120
+125
"""


def test_show_golden(run):
    db = store_path(run)
    p = run_cli("show", only_id(db, "/diff"), "--db", db)
    assert p.returncode == 0, p.stderr
    assert "\x1b[" not in p.stdout  # not a terminal: no colour
    assert normalise(p.stdout) == SHOW_TEXT
    p = run_cli("show", "--db", db, only_id(db, "/api/7?quiet=1&real=1"))
    assert p.returncode == 0, p.stderr
    assert normalise(p.stdout) == SHOW_JSON_TEXT


def test_show_json_has_bodies(run):
    db = store_path(run)
    rid = only_id(db, "/diff")
    p = run_cli("show", rid, "--db", db, "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["id"] == rid and doc["equal"] is False
    master, shadow = doc["backends"]
    assert master["body"] == "header line\nitem: teapot\nprice: 12.50\n" \
                             "footer line\n"
    assert shadow["body"].endswith("price: 12.49\nfooter line\n")
    assert master["body_encoding"] == "utf-8"
    assert master["body_truncated"] is False
    assert ["Authorization", "[redacted]"] in doc["request_headers"]
    # Equal results keep no bodies.
    p = run_cli("show", only_id(db, "/text/3"), "--db", db, "--format", "json")
    assert json.loads(p.stdout)["backends"][0]["body"] is None


def test_show_unknown_id_and_usage(run):
    db = store_path(run)
    p = run_cli("show", "0123abc", "--db", db)
    assert p.returncode == 2
    assert "no result 0123abc" in p.stderr
    p = run_cli("show", "--db", db)
    assert p.returncode == 1 and "ID" in p.stderr


def run_on_pty(args, env):
    """Runs the binary with stdout on a pseudo-terminal; returns its output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(kagami_bin()), *map(str, args)],
                            stdout=slave, stderr=subprocess.PIPE, env=env,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        out += data
    os.close(master)
    err = proc.communicate(timeout=20)[1].decode(errors="replace")
    assert proc.returncode == 0, err
    assert not sanitizer_reports(err), err
    return out.decode(errors="replace")


def test_show_colours_only_on_a_terminal(run):
    db = store_path(run)
    rid = only_id(db, "/diff")
    env = sanitizer_env()
    env.pop("NO_COLOR", None)
    out = run_on_pty(["show", rid, "--db", db], env)
    assert "\x1b[31m-price: 12.50\x1b[0m" in out
    assert "\x1b[32m+price: 12.49\x1b[0m" in out
    env["NO_COLOR"] = "1"
    out = run_on_pty(["show", rid, "--db", db], env)
    assert "\x1b[" not in out
    assert "-price: 12.50" in out


# --- the store while kagami runs -------------------------------------------
def test_store_readable_while_running(proxy):
    """WAL: another process reads while kagami writes, and an open read
    transaction does not stop kagami's writes."""
    k = proxy.kagami
    db = store_path(k)
    for i in range(5):
        assert k.get("/text/%d" % (i + 1)).status == 200
    wait_stored(db, 5)
    reader = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.execute("BEGIN")
    counted = "SELECT sum(compared) FROM agg_requests"
    assert reader.execute(counted).fetchone()[0] == 5
    for i in range(5):
        assert k.get("/diff?n=%d" % i).status == 200
    wait_stored(db, 10)  # new rows visible to a new reader meanwhile
    # The old snapshot is stable until it ends.
    assert reader.execute(counted).fetchone()[0] == 5
    reader.execute("COMMIT")
    assert reader.execute(counted).fetchone()[0] == 10
    reader.close()
    # kagami report works on the live store too.
    p = report("--db", db, "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["compared"] == 10
    assert k.running()


def test_secrets_never_reach_the_file(run):
    k = run
    raw = b""
    for suffix in ("", "-wal"):
        path = str(store_path(k)) + suffix
        if os.path.exists(path):
            with open(path, "rb") as f:
                raw += f.read()
    assert b"s3cr3t-t0ken" not in raw
    assert b"hush-hush" not in raw
    assert b"visible" in raw


def test_retention_by_rows(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    # Every equal result kept one by one, so that the total bound is what
    # decides (old configs' only retention key, still honoured).
    k = start_kagami([production, newdb], options={
        "store_max_rows": 5, "store_keep_equal_per_minute": 100})
    with k.connect() as c:
        for i in range(12):
            assert c.request("GET", "/text/%d" % (i + 1)).status == 200
    k.wait_log(12)
    assert k.stop() == 0
    conn = sqlite3.connect(str(store_path(k)))
    urls = [r[0] for r in conn.execute("SELECT url FROM results ORDER BY id")]
    nback = conn.execute("SELECT count(*) FROM backends").fetchone()[0]
    conn.close()
    assert urls == ["/text/%d" % i for i in range(8, 13)]
    assert nback == 10


# --- clear errors at start -----------------------------------------------------
def run_kagami(tmp_path, backends, options):
    """`kagami run` of a config in tmp_path expected to fail at start."""
    config = tmp_path / "kagami.lua"
    config.write_text(render_config("127.0.0.1:%d" % free_port(), backends,
                                    "production", options=options))
    proc = subprocess.run([str(kagami_bin()), "run", str(config)],
                          capture_output=True, text=True, timeout=30,
                          errors="replace", env=sanitizer_env(), cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert not sanitizer_reports(proc.stderr), proc.stderr
    return proc


def test_second_kagami_on_the_same_store_fails(proxy, tmp_path):
    db = store_path(proxy.kagami)
    proc = run_kagami(tmp_path, [proxy.production, proxy.newdb],
                      {"store": str(db)})
    assert proc.returncode == 1, proc.stderr
    assert "store %s: locked: another kagami" % db in proc.stderr
    assert proxy.kagami.running()


@pytest.mark.parametrize("content,word", [
    (b"hello, I am a text file\n" * 10, "not a database"),
    (b"SQLite format 3\x00" + b"\xa5" * 4000, "not a database"),
], ids=["not_sqlite", "corrupt"])
def test_unusable_store_fails_at_start(make_backend, tmp_path, content, word):
    production = make_backend("production")
    db = tmp_path / "bad.db"
    db.write_bytes(content)
    proc = run_kagami(tmp_path, [production], {"store": str(db)})
    assert proc.returncode == 1, proc.stderr
    assert "store %s: " % db in proc.stderr and word in proc.stderr
    assert db.read_bytes() == content  # left as it was


def test_foreign_database_fails_at_start(make_backend, tmp_path):
    production = make_backend("production")
    db = tmp_path / "app.db"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    proc = run_kagami(tmp_path, [production], {"store": str(db)})
    assert proc.returncode == 1, proc.stderr
    assert "store %s: an SQLite database but not a kagami store (tables: " \
        "orders)" % db in proc.stderr
    p = report("--db", db)
    assert p.returncode == 1 and "not a kagami store" in p.stderr


def test_store_locked_by_a_writer_fails_at_start(make_backend, tmp_path):
    production = make_backend("production")
    db = tmp_path / "k.db"
    # A store made by kagami, then held by an sqlite3 write transaction.
    first = run_kagami_ok(tmp_path, [production], db)
    assert first == 0
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        proc = run_kagami(tmp_path, [production], {"store": str(db)})
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert proc.returncode == 1, proc.stderr
    assert "store %s: locked by another process" % db in proc.stderr


def run_kagami_ok(tmp_path, backends, db):
    """Starts kagami on store db and stops it at once; its exit code."""
    config = tmp_path / "ok.lua"
    port = free_port()
    config.write_text(render_config("127.0.0.1:%d" % port, backends,
                                    "production", options={"store": str(db)}))
    proc = subprocess.Popen([str(kagami_bin()), "run", str(config)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=sanitizer_env(),
                            cwd=tmp_path, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    err = proc.communicate(timeout=20)[1].decode(errors="replace")
    assert not sanitizer_reports(err), err
    return proc.returncode
