"""`kagami admin`: the dashboard and the read-only admin API served from a
store, with no proxy (issue 15): a fleet's PostgreSQL store written by two
instances, or a SQLite file; never writing; a wrong store refused at start;
the token as the proxy's admin listener takes it."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import pgserver
from backends import free_port
from harness import STOP_TIMEOUT, kagami_bin, run_cli, sanitizer_env, sanitizer_reports
from test_pgstore import new_db, start, traffic, wait_counted

needs_pg = pytest.mark.skipif(not pgserver.available(),
                              reason="postgresql-15 is not installed")


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.skip("postgresql-15 is not installed")
    with pgserver.PgServer() as server:
        yield server


class Admin:
    """A running `kagami admin ARGS --listen 127.0.0.1:PORT`."""

    def __init__(self, tmp_path, args, env=None):
        self.port = free_port()
        self.stderr_path = tmp_path / ("admin%d.stderr" % self.port)
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(kagami_bin()), "admin", *args, "--listen", "127.0.0.1:%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
            env=dict(sanitizer_env(), **(env or {})), cwd=tmp_path)
        deadline = time.monotonic() + 15
        while self.get("/healthz")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("kagami admin did not come up:\n" + self.stderr())
            time.sleep(0.1)

    def stderr(self):
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def get(self, path, token=None):
        """(status, body text); status 0 when nothing listens."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def json(self, path, token=None):
        status, body = self.get(path, token)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stop(self):
        """SIGTERM: exits 0, with no sanitizer report (leaks included)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(STOP_TIMEOUT)
        self._err.close()
        err = self.stderr()
        assert rc == 0, err[-3000:]
        assert not sanitizer_reports(err), err[-8000:]
        return err


def admin_cli(*args, env=None):
    """`kagami admin ARGS` expected to fail at once."""
    r = subprocess.run([str(kagami_bin()), "admin", *args], capture_output=True, text=True,
                       env=dict(sanitizer_env(), **(env or {})), timeout=60)
    assert not sanitizer_reports(r.stderr), r.stderr
    return r


def table_counts(pg, db):
    return pg.psql(db, "SELECT (SELECT count(*) FROM results), (SELECT count(*) FROM "
                       "agg_requests), (SELECT count(*) FROM agg_backends), (SELECT "
                       "count(*) FROM agg_locations), (SELECT count(*) FROM noise), "
                       "(SELECT count(*) FROM kagami_meta)")[0]


@needs_pg
def test_admin_serves_a_fleet_from_postgresql_read_only(pg, make_backend, start_kagami,
                                                         tmp_path):
    """Two instances write; `kagami admin --db-env` serves their store: the
    fleet and each instance, the results, the dashboard; it follows what
    they write next, and it never writes itself."""
    db, url = new_db(pg)
    proxy_admin = free_port()
    east = start(make_backend, start_kagami, url, "east", admin=proxy_admin)
    west = start(make_backend, start_kagami, url, "west")
    traffic(east, 12, "e")
    traffic(west, 18, "w")
    assert wait_counted(pg, db, "east", 12) == (12, 4)
    assert wait_counted(pg, db, "west", 18) == (18, 6)

    # a proxy's own admin listener names the fleet too, and is live
    with urllib.request.urlopen("http://127.0.0.1:%d/api/instances" % proxy_admin) as r:
        assert json.loads(r.read()) == {"store": "postgresql", "live": True,
                                        "instances": ["east", "west"]}

    # the url (a password's place) from the environment, not argv
    a = Admin(tmp_path, ["--db-env", "KG_TEST_STORE"], env={"KG_TEST_STORE": url})
    assert a.json("/api/instances") == {"store": "postgresql", "live": False,
                                        "instances": ["east", "west"]}
    fleet = a.json("/api/endpoints")
    assert (fleet["compared"], fleet["differing"]) == (30, 10)
    one = a.json("/api/endpoints?instance=west")
    assert (one["compared"], one["differing"]) == (18, 6)
    assert a.json("/api/endpoints?instance=nobody")["compared"] == 0
    series = a.json("/api/timeseries?instance=east&since=1h")
    assert sum(b["compared"] for b in series["buckets"]) == 12

    res = a.json("/api/results?differing=1&limit=100")["results"]
    assert len(res) == 10 and all(not r["equal"] for r in res)
    assert len(a.json("/api/results?differing=1&instance=east")["results"]) == 4
    one_result = a.json("/api/results/" + res[0]["id"])
    assert one_result["id"] == res[0]["id"] and one_result["diff"]
    assert a.get("/api/results/no-such-id")[0] == 404

    status, html = a.get("/")
    assert status == 200 and 'id="instance"' in html
    assert a.get("/app.js")[0] == 200
    # what only a running proxy knows is not made up here
    status, metrics = a.get("/metrics")
    assert status == 200 and "kagami_build_info" in metrics
    assert "kagami_requests_total" not in metrics
    status, body = a.get("/api/noise")
    assert status == 501 and "running proxies" in body
    assert a.get("/api/endpoints?since=yesterday")[0] == 400
    a.proc.send_signal(signal.SIGHUP)  # a service manager's reload: nothing to do
    time.sleep(0.3)
    assert a.get("/healthz")[0] == 200 and "nothing to reload" in a.stderr()

    # fresh: what the fleet writes shows within the 2 s an answer is shared
    traffic(west, 6, "w2")
    assert wait_counted(pg, db, "west", 24)[0] == 24
    written = time.monotonic()
    while a.json("/api/endpoints?instance=west")["compared"] != 24:
        assert time.monotonic() - written < 2.5, "an answer older than 2 s"
        time.sleep(0.1)

    # read-only: with the writers gone, every route leaves the store as it was
    assert east.stop() == 0 and west.stop() == 0
    before = table_counts(pg, db)
    for path in ("/api/instances", "/api/endpoints", "/api/endpoints?instance=east",
                 "/api/timeseries?bucket=60", "/api/results", "/api/results/" + res[0]["id"],
                 "/api/noise", "/metrics", "/"):
        a.get(path)
    assert table_counts(pg, db) == before
    err = a.stop()
    assert "read-only" in err and "postgresql://kagami@" in err


@needs_pg
def test_admin_refuses_a_store_it_cannot_read(pg, tmp_path):
    """A wrong store stops `kagami admin` at once, exit 1, saying why."""
    r = admin_cli("--db", "postgresql://kagami@127.0.0.1:%d/x" % free_port(),
                  "--listen", str(free_port()))
    assert r.returncode == 1 and "cannot connect" in r.stderr, r.stderr
    empty, url = new_db(pg)
    r = admin_cli("--db", url, "--listen", str(free_port()))
    assert r.returncode == 1 and "not a kagami store" in r.stderr, r.stderr
    r = admin_cli("--db", str(tmp_path / "missing.db"), "--listen", str(free_port()))
    assert r.returncode == 1 and "missing.db" in r.stderr, r.stderr
    r = admin_cli("--db-env", "KG_TEST_UNSET", "--listen", str(free_port()))
    assert r.returncode == 1 and "KG_TEST_UNSET is not set" in r.stderr, r.stderr
    (tmp_path / "url").write_text("/not/a/url\n")
    r = admin_cli("--db-file", str(tmp_path / "url"), "--listen", str(free_port()))
    assert r.returncode == 1 and "expected a postgresql:// url" in r.stderr, r.stderr
    r = admin_cli("--db", url)
    assert r.returncode == 1 and "--listen" in r.stderr, r.stderr
    r = admin_cli("--listen", "8095")
    assert r.returncode == 1 and "which store" in r.stderr, r.stderr
    r = admin_cli("--db", url, "--listen", "nowhere")
    assert r.returncode == 1 and "--listen" in r.stderr, r.stderr


def test_admin_serves_a_sqlite_store(make_backend, start_kagami, tmp_path):
    """A single instance's SQLite file, read while that kagami writes it:
    the same API, one unnamed instance (no selector)."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    for i in range(9):
        path = "/diff?s=%d" % i if i % 3 == 0 else "/text/3?s=%d" % i
        assert k.get(path).status == 200
    k.wait_log(9)
    store = k.workdir / "kagami.db"
    a = Admin(tmp_path, ["--db", str(store)])
    assert a.json("/api/instances") == {"store": "sqlite", "live": False, "instances": []}
    deadline = time.monotonic() + 10
    while a.json("/api/endpoints")["compared"] < 9 and time.monotonic() < deadline:
        time.sleep(0.2)
    doc = a.json("/api/endpoints")
    assert (doc["compared"], doc["differing"]) == (9, 3)
    assert len(a.json("/api/results?differing=1")["results"]) == 3
    a.stop()
    assert k.stop() == 0


def test_admin_token(make_backend, start_kagami, tmp_path):
    """--token-file (or $KAGAMI_ADMIN_TOKEN): the API and /metrics need the
    bearer token, /healthz and the dashboard's files do not."""
    k = start_kagami([make_backend("production"), make_backend("newdb", variant="newdb")])
    assert k.get("/text/1").status == 200
    k.wait_log(1)
    store = str(k.workdir / "kagami.db")
    (tmp_path / "token").write_text("s3cret-token\n")
    a = Admin(tmp_path, ["--db", store, "--token-file", str(tmp_path / "token")])
    assert a.get("/api/endpoints")[0] == 401
    assert a.get("/metrics")[0] == 401
    assert a.get("/api/endpoints", token="wrong")[0] == 401
    assert a.json("/api/endpoints", token="s3cret-token")["compared"] >= 0
    assert a.get("/healthz")[0] == 200 and a.get("/")[0] == 200
    assert "API token required" in a.stop()
    b = Admin(tmp_path, ["--db", store], env={"KAGAMI_ADMIN_TOKEN": "from-env"})
    assert b.get("/api/instances")[0] == 401
    assert b.get("/api/instances", token="from-env")[0] == 200
    b.stop()
    r = admin_cli("--db", store, "--listen", str(free_port()),
                  "--token-file", str(tmp_path / "absent"))
    assert r.returncode == 1 and "absent" in r.stderr, r.stderr
    assert k.stop() == 0


def test_admin_help_and_usage():
    r = run_cli("admin", "--help")
    assert r.returncode == 0 and "--db-env NAME" in r.stdout
    assert "admin (--db" in run_cli("--help").stdout
    r = run_cli("admin", "--bogus")
    assert r.returncode == 1 and "unknown option" in r.stderr
