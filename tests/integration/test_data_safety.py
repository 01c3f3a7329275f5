"""Issue 6 point 7: data safety.

kagami is killed with SIGKILL while requests stream through it. Afterwards
the diff log holds only whole JSON lines (every line parses, the file ends
with a newline), and the results store (when this build has one) passes
SQLite's integrity check with no half-written result. Restarted on the same
files, kagami keeps every old record and appends new ones.
"""

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

import rawhttp
from backends import free_port
from harness import Kagami, render_config, run_cli, sanitizer_reports

LOAD_SECONDS = 1.5
MIN_RECORDS_BEFORE_KILL = 50


def store_supported(tmp_path):
    """True when this build accepts the `store` config key."""
    probe = tmp_path / "probe.lua"
    probe.write_text('return { backends = { m = { url = "http://127.0.0.1:1",'
                     ' master = true } }, store = "%s" }\n'
                     % (tmp_path / "probe.db"))
    proc = run_cli("check", probe)
    if proc.returncode == 0:
        return True
    assert "store" in proc.stderr, proc.stderr
    return False


def log_lines(path):
    """All records of a JSON-lines file; fails on a partial or bad line."""
    data = path.read_bytes() if path.exists() else b""
    if not data:
        return data, []
    assert data.endswith(b"\n"), "diff log ends in a partial line: %r" % (
        data[-200:],)
    records = []
    for n, line in enumerate(data.split(b"\n")[:-1], 1):
        try:
            records.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("diff log line %d is not JSON (%s): %r"
                                 % (n, e, line[:300]))
    return data, records


def sqlite_integrity(db):
    """(integrity_check output, result rows, orphan backend rows), read by
    the sqlite3 command-line shell where there is one (a separate program,
    as an operator would), else by the sqlite3 module."""
    queries = ["PRAGMA integrity_check;",
               "SELECT count(*) FROM results;",
               "SELECT count(*) FROM backends WHERE result_id NOT IN "
               "(SELECT id FROM results);"]
    if subprocess.run(["which", "sqlite3"], capture_output=True).returncode == 0:
        out = []
        for q in queries:
            proc = subprocess.run(["sqlite3", str(db), q], capture_output=True,
                                  text=True, timeout=30)
            assert proc.returncode == 0, proc.stderr
            out.append(proc.stdout.strip())
        return out[0], int(out[1]), int(out[2])
    con = sqlite3.connect(str(db))
    try:
        return (con.execute(queries[0]).fetchone()[0],
                con.execute(queries[1]).fetchone()[0],
                con.execute(queries[2]).fetchone()[0])
    finally:
        con.close()


class Load:
    """Client threads sending shadowed requests until stopped; errors after
    the kill are expected and only counted."""

    def __init__(self, port, nthreads=4):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,),
                                         daemon=True) for i in range(nthreads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def run(self, ti):
        i = 0
        while not self.stop.is_set():
            try:
                with rawhttp.Connection(self.port, timeout=5) as c:
                    while not self.stop.is_set():
                        i += 1
                        target = ("/diff?t=%d&i=%d" % (ti, i) if i % 2 else
                                  "/text/40?t=%d&i=%d" % (ti, i))
                        if c.request("GET", target).status == 200:
                            with self.lock:
                                self.ok += 1
            except (OSError, ValueError, rawhttp.IncompleteResponse):
                time.sleep(0.01)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


@pytest.fixture
def procs():
    """Kagami processes to kill at teardown whatever happened."""
    started = []
    yield started
    for k in started:
        if k.proc is not None and k.proc.poll() is None:
            k.proc.kill()
            k.proc.wait(5)


def test_kill_9_under_load_then_restart(make_backend, tmp_path, procs):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    workdir = tmp_path / "kagami"
    workdir.mkdir()
    log = workdir / "diffs.jsonl"
    db = workdir / "kagami.db"
    with_store = store_supported(tmp_path)
    options = {"diff_log": str(log)}
    if with_store:
        options["store"] = str(db)
    port = free_port()
    text = render_config("127.0.0.1:%d" % port, [production, newdb],
                         "production", None, options)

    # 1. Load, then SIGKILL in the middle of it.
    k = Kagami(workdir, text, port, log)
    procs.append(k)
    k.start()
    load = Load(port).start()
    deadline = time.monotonic() + 10
    time.sleep(LOAD_SECONDS)
    while len(log_lines(log)[1]) < MIN_RECORDS_BEFORE_KILL:
        assert time.monotonic() < deadline, "diff log stays (nearly) empty"
        time.sleep(0.05)
    before = load.ok
    time.sleep(0.2)
    assert load.ok > before, "no requests were flowing at the kill"
    os.kill(k.proc.pid, signal.SIGKILL)
    assert k.wait(10) == -signal.SIGKILL
    load.finish()
    first_stderr = k.stderr()
    assert not sanitizer_reports(first_stderr), first_stderr[-4000:]

    data1, records1 = log_lines(log)
    assert len(records1) >= MIN_RECORDS_BEFORE_KILL
    assert all(r["method"] == "GET" and "backends" in r for r in records1)
    if with_store:
        check, rows1, orphans = sqlite_integrity(db)
        assert check == "ok", check
        assert orphans == 0, "backend rows without their result"
        assert rows1 > 0, "no result committed in %.1fs of load" % LOAD_SECONDS

    print("killed after %d responses: %d whole diff-log records%s"
          % (load.ok, len(records1),
             ", %d store results" % rows1 if with_store else ""))

    # 2. Restart on the same files: old records stay, new ones follow.
    k2 = Kagami(workdir, text, port, log)
    procs.append(k2)
    k2.start()
    for i in range(20):
        assert k2.get("/diff?after=%d" % i).status == 200
    k2.wait_log(20, lambda e: "after=" in e["url"])
    assert k2.stop() == 0
    k2.assert_clean()
    data2, records2 = log_lines(log)
    assert data2.startswith(data1), "records written before the kill changed"
    after = [r for r in records2[len(records1):]]
    assert sorted(r["url"] for r in after) == sorted(
        "/diff?after=%d" % i for i in range(20))
    ids = [r["id"] for r in records2]
    assert len(set(ids)) == len(ids), "a record id was reused after restart"
    if not with_store:
        pytest.skip("diff log checked; this build has no `store` config key "
                    "(src/results/store.c), so the SQLite part was not run")
    check, rows2, orphans = sqlite_integrity(db)
    assert check == "ok", check
    assert orphans == 0
    # Every new result is kept: /diff keeps its newest store_keep_differing
    # (1000) results, so the older ones make room.
    conn = sqlite3.connect(str(db))
    kept = conn.execute("SELECT count(*) FROM results WHERE url LIKE"
                        " '/diff?after=%'").fetchone()[0]
    counted = conn.execute("SELECT sum(compared) FROM agg_requests").fetchone()[0]
    conn.close()
    assert kept == 20 and rows2 >= 20, (rows1, rows2, kept)
    assert counted >= rows1 + 20, (rows1, counted)
