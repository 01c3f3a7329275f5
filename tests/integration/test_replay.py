"""Record and replay: `record = {...}` in the proxy config, and
`kagami replay FILE --target URL [...]`.

Traffic is recorded through a real kagami (build/asan/kagami) in front of a
real backend, then replayed with the same binary to backends that answer
the same or differently; what the replay reports (its --json summary, the
diff log, the results store) and what the backends received are checked.
Damaged recordings are made by cutting or corrupting a real one at record
boundaries found by the tiny WARC parser below. Timing checks are loose on
purpose: order is exact, spacing only roughly (rate accuracy is measured in
bench/replay_rate.py, not here).
"""

import gzip
import json
import re
import signal
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from backends import free_port
from harness import (Kagami, kagami_bin, render_config, run_cli,
                     sanitizer_env, sanitizer_reports)

# --- WARC helpers -----------------------------------------------------------


def warc_records(data):
    """[(offset, fields dict (lower-case names), block)] of a WARC file's
    whole records; stops at the first one that is not whole."""
    return warc_parse(data)[0]


def warc_parse(data):
    """(records as warc_records gives them, offset where parsing stopped:
    len(data) when the file is whole records to its end)."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0 or not data.startswith(b"WARC/1.", pos):
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")[1:]
        fields = {}
        for line in lines:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        n = int(fields["content-length"])
        block = data[end + 4:end + 4 + n]
        if len(block) < n or data[end + 4 + n:end + 8 + n] != b"\r\n\r\n":
            break
        out.append((pos, fields, block))
        pos = end + 8 + n
    return out, pos


def warc_record(wtype, block, uri, date, rid=None, concurrent=None,
                extra=()):
    """One WARC/1.1 record as bytes."""
    rid = rid or "<urn:uuid:%s>" % uuid.uuid4()
    ctype = "application/http;msgtype=%s" % wtype
    fields = [("WARC-Type", wtype), ("WARC-Record-ID", rid),
              ("WARC-Date", date), ("WARC-Target-URI", uri)]
    if concurrent:
        fields.append(("WARC-Concurrent-To", concurrent))
    fields += list(extra)
    fields += [("Content-Type", ctype), ("Content-Length", str(len(block)))]
    head = "WARC/1.1\r\n" + "".join("%s: %s\r\n" % f for f in fields)
    return head.encode() + b"\r\n" + block + b"\r\n\r\n"


def warc_exchange(path, t, status=200, body=b"ok\n"):
    """A request and its response record, recorded at Unix time t."""
    date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + \
        (".%06dZ" % round((t - int(t)) * 1e6))
    uri = "http://shop.example" + path
    req = ("GET %s HTTP/1.1\r\nHost: shop.example\r\n\r\n" % path).encode()
    resp = (b"HTTP/1.1 %d OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % (status, len(body))) + body
    rid = "<urn:uuid:%s>" % uuid.uuid4()
    return (warc_record("request", req, uri, date, rid=rid) +
            warc_record("response", resp, uri, date, concurrent=rid))


# --- running things ---------------------------------------------------------


def replay(*args, timeout=60):
    """Runs `kagami replay ... --json`; returns (proc, summary or None)."""
    proc = run_cli("replay", *args, "--json", timeout=timeout)
    summary = None
    if proc.stdout.strip():
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return proc, summary


def diff_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.strip()]


# What the round trip records. Every endpoint is distinct so that "which
# endpoints differ" has one exact answer. The newdb variant of the test
# backend answers differently exactly where DIFFERING says.
REQUESTS = [
    ("GET", "/users/1", None),
    ("GET", "/api/noisy", None),               # noise removed by rules
    ("GET", "/api/real?quiet=1&real=1", None),
    ("GET", "/page?quiet=1", None),            # HTML spelled differently
    ("GET", "/form.txt?quiet=1", None),
    ("GET", "/text/20", None),
    ("GET", "/chunky", None),                  # chunked vs sized
    ("GET", "/chunked", None),
    ("GET", "/status/404", None),
    ("GET", "/hdr", None),                     # noisy header fields
    ("GET", "/enc/x?m=gzip&s=gzip&real=1", None),
    ("GET", "/diff", None),
    ("HEAD", "/text/3", None),
    ("POST", "/echo", b"qty=2&sku=a1"),        # echoes the backend's name
]
DIFFERING = {"GET /api/real", "GET /enc/x", "GET /diff", "POST /echo"}
NOISE_RULES = [{"endpoint": "GET /api/*",
                "ignore": ["$.meta.ts", "$.meta.request_id",
                           "$.items[*].updated_at"]}]


def record(start_kagami, backends, path, requests=REQUESTS, extra=None,
           gap=0.0):
    """Sends `requests` through a recording kagami, one at a time, and stops
    it so the recording is complete. Returns the kagami (for its config)."""
    options = {"record": {"file": str(path), "sample": 1},
               "store": False, "rules": NOISE_RULES}
    options.update(extra or {})
    k = start_kagami(backends, options=options)
    for method, target, body in requests:
        headers = [("User-Agent", "replay-test")]
        r = k.request(method, target, headers=headers, body=body)
        assert r.status in (200, 404), (target, r.status)
        if gap:
            time.sleep(gap)
    assert k.stop() == 0
    return k


@pytest.fixture
def recorded(tmp_path, make_backend, start_kagami):
    """A recording of REQUESTS through kagami in front of `production`."""
    production = make_backend("production")
    path = tmp_path / "traffic.warc"
    k = record(start_kagami, [production], path)
    production.requests.clear()
    return production, path, k


# --- recording ----------------------------------------------------------------


def test_recording_is_warc_with_pairs(recorded):
    production, path, _ = recorded
    data = path.read_bytes()
    recs, stop = warc_parse(data)
    # Whole records to the end: warcinfo, then request/response pairs.
    assert stop == len(data)
    assert recs[0][1]["warc-type"] == "warcinfo"
    pairs = recs[1:]
    assert len(pairs) == 2 * len(REQUESTS)
    for (_, req, rblock), (_, resp, sblock) in zip(pairs[::2], pairs[1::2]):
        assert req["warc-type"] == "request"
        assert req["content-type"] == "application/http;msgtype=request"
        assert resp["warc-type"] == "response"
        assert resp["warc-concurrent-to"] == req["warc-record-id"]
        assert req["warc-record-id"].startswith("<urn:uuid:")
        assert req["warc-target-uri"].startswith("http://127.0.0.1/")  # Host
        assert float(resp["warc-kagami-elapsed"]) >= 0
        assert sblock.startswith(b"HTTP/1.1 ")
        head = sblock.split(b"\r\n\r\n", 1)[0].lower()
        assert b"transfer-encoding" not in head
    # The chunked response is recorded de-chunked with a Content-Length.
    chunked = [b for _, f, b in pairs if f["warc-target-uri"].endswith(
        "/chunked") and f["warc-type"] == "response"][0]
    assert b"\r\nContent-Length: " in chunked


def test_recording_redacts_credentials(tmp_path, make_backend, start_kagami):
    production = make_backend("production")
    path = tmp_path / "traffic.warc"
    k = start_kagami([production], options={
        "record": {"file": str(path)}, "store": False,
        "redact_headers": ["X-Api-Key"]})
    k.request("GET", "/hdr", headers=[
        ("Authorization", "Bearer s3cret-token"),
        ("Cookie", "session=abcdef; theme=dark"),
        ("X-Api-Key", "key-123")])
    assert k.stop() == 0
    data = path.read_bytes()
    for secret in (b"s3cret-token", b"abcdef", b"key-123"):
        assert secret not in data
    assert b"Authorization: [redacted]" in data
    assert b"Cookie: session=[redacted]; theme=[redacted]" in data
    assert b"X-Api-Key: [redacted]" in data
    # The response's Set-Cookie keeps its name and attributes only.
    assert b"Set-Cookie: session=[redacted]; Path=/" in data

    kept = tmp_path / "kept.warc"
    k2 = start_kagami([production], options={
        "record": {"file": str(kept), "keep_credentials": True},
        "store": False})
    k2.request("GET", "/hdr", headers=[("Authorization", "Bearer s3cret")])
    assert k2.stop() == 0
    assert b"Authorization: Bearer s3cret" in kept.read_bytes()


def test_recording_without_bodies_and_rotation(tmp_path, make_backend,
                                               start_kagami):
    production = make_backend("production")
    path = tmp_path / "traffic.warc"
    k = start_kagami([production], options={
        "record": {"file": str(path), "bodies": False, "max_bytes": 4096},
        "store": False})
    for i in range(40):
        k.request("POST", "/echo", body=b"secret-payload-%d" % i)
    assert k.stop() == 0
    files = sorted(tmp_path.glob("traffic.warc*"))
    assert len(files) >= 3, files
    total = 0
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 4096
        assert b"secret-payload" not in data
        recs, stop = warc_parse(data)
        # Whole records to the end, each file starting with warcinfo.
        assert stop == len(data)
        assert recs[0][1]["warc-type"] == "warcinfo"
        total += sum(1 for _, fl, _ in recs if fl["warc-type"] == "request")
        assert all(fl.get("warc-truncated") == "length" for _, fl, _ in recs
                   if fl["warc-type"] == "response")
    assert total == 40


def test_kill_9_loses_at_most_the_last_record(tmp_path, make_backend):
    """kagami killed while recording busy traffic: every record but
    possibly the last is whole, a replay reads all of them, and a restart
    moves the damaged file aside instead of appending after it."""
    production = make_backend("production")
    path = tmp_path / "traffic.warc"
    port = free_port()
    text = render_config("127.0.0.1:%d" % port, [production], "production",
                         None, {"record": {"file": str(path)},
                                "store": False})
    (tmp_path / "k").mkdir()
    k = Kagami(tmp_path / "k", text, port, None).start()
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                k.request("GET", "/big/20000")
            except Exception:  # the proxy is killed under our feet
                return

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            (not path.exists() or path.stat().st_size < 400000):
        time.sleep(0.01)
    k.proc.kill()
    k.wait(5)
    stop.set()
    for t in threads:
        t.join(10)
    data = path.read_bytes()
    recs, stopped = warc_parse(data)
    assert len(recs) > 20
    # Nothing but (part of) one record after the last whole one.
    assert data.find(b"WARC/1.1\r\n", stopped + 1) == -1
    exchanges = sum(1 for _, f, _ in recs if f["warc-type"] == "request")
    b = make_backend("replayed")
    proc, s = replay(path, "--target", b.url)
    assert proc.returncode == 0, proc.stderr
    assert s["sent"] == exchanges
    assert s["input"]["damaged"] == (stopped != len(data))
    # Recording again into the same file, once its end is cut short (as a
    # short write on a full disk would leave it; kill -9 alone rarely
    # does, the exchange being one write): the damaged file is moved
    # aside, not appended to.
    path.write_bytes(data[:len(data) - 100])
    (tmp_path / "k2").mkdir()
    k2 = Kagami(tmp_path / "k2", text, port, None).start()
    k2.request("GET", "/users/1")
    assert k2.stop() == 0
    k2.assert_clean()
    assert "moved it to" in k2.stderr()
    new = path.read_bytes()
    assert warc_parse(new)[1] == len(new)
    assert [f["warc-target-uri"].rsplit("/", 2)[-2:] for _, f, _ in
            warc_records(new) if f["warc-type"] == "request"] == \
        [["users", "1"]]
    moved = [p for p in tmp_path.glob("traffic.warc.*")]
    assert len(moved) == 1 and moved[0].read_bytes() == data[:len(data) - 100]


# --- the round trip -------------------------------------------------------------


def test_replay_unchanged_backend_is_equal(recorded, tmp_path):
    production, path, k = recorded
    log = tmp_path / "replay.jsonl"
    db = tmp_path / "replay.db"
    proc, s = replay(path, "--target", production.url, "--compare", "--methods", "GET,HEAD,POST",
                     "--config", k.config, "--diff-log", log, "--db", db,
                     "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    # Figures to the thousandth, not 0.97410889099999998 (issue 16).
    long_reals = re.findall(r"\d+\.\d{4,}", proc.stdout)
    assert long_reals == [], long_reals
    assert s["sent"] == len(REQUESTS) and s["errors"] == 0
    assert s["compare"]["compared"] == len(REQUESTS)
    assert s["compare"]["differing"] == 0, diff_log(log)
    assert s["compare"]["differing_endpoints"] == []
    # The backend got the recorded requests, in order (one at a time), with
    # their fields and bodies.
    got = production.received()
    assert [(r.method, r.target) for r in got] == \
        [(m, t) for m, t, _ in REQUESTS]
    echo = [r for r in got if r.path == "/echo"][0]
    assert echo.body == b"qty=2&sku=a1"
    assert echo.header("User-Agent") == "replay-test"
    # The diff log has the live format, backends named recorded/replay.
    entries = diff_log(log)
    assert len(entries) == len(REQUESTS)
    assert all(e["equal"] for e in entries)
    assert set(entries[0]["backends"]) == {"recorded", "replay"}
    # So does the store, for `kagami report` and the dashboard.
    with sqlite3.connect(str(db)) as c:
        assert c.execute("select count(*) from results").fetchone()[0] == \
            len(REQUESTS)
        names = {r[0] for r in c.execute("select distinct name from backends")}
    assert names == {"recorded", "replay"}
    report = run_cli("report", "--db", db, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert "GET /users/:id" in {e["endpoint"] for e in
                                json.loads(report.stdout)["endpoints"]}
    # Per-endpoint latency in the summary.
    eps = {e["endpoint"]: e for e in s["endpoints"]}
    assert eps["GET /users/:id"]["requests"] == 1
    assert eps["GET /users/:id"]["p50_ms"] is not None
    assert s["statuses"] == {"200": len(REQUESTS) - 1, "404": 1}


def test_replay_changed_backend_names_differing_endpoints(
        recorded, tmp_path, make_backend):
    production, path, k = recorded
    newdb = make_backend("newdb", variant="newdb")
    log = tmp_path / "replay.jsonl"
    proc, s = replay(path, "--target", newdb.url, "--compare", "--methods", "GET,HEAD,POST",
                     "--config", k.config, "--diff-log", log)
    assert proc.returncode == 0, proc.stderr
    assert set(s["compare"]["differing_endpoints"]) == DIFFERING
    entries = diff_log(log)
    assert {e["endpoint"] for e in entries if not e["equal"]} == DIFFERING
    by_ep = {e["endpoint"]: e for e in entries}
    assert any(d["where"] == "$.price" for d in
               by_ep["GET /api/real"]["differences"])
    assert by_ep["GET /enc/x"]["differences"][0]["where"].startswith("line")
    # Without --methods, the recorded write is skipped and counted, never
    # sent (issue 12): replay defaults to the safe methods, as shadowing does.
    posts = len([r for r in newdb.received() if r.method == "POST"])
    text = run_cli("replay", path, "--target", newdb.url, "--compare",
                   "--config", k.config)
    assert text.returncode == 0
    assert len([r for r in newdb.received() if r.method == "POST"]) == posts
    assert "compared %d: %d equal, %d differing" % (
        len(REQUESTS) - 1, len(REQUESTS) - len(DIFFERING), len(DIFFERING) - 1) \
        in text.stdout
    assert "skipped, method not in --methods (GET,HEAD,OPTIONS): 1 requests (POST 1)" \
        in text.stdout, text.stdout
    proc, s = replay(path, "--target", newdb.url)
    assert proc.returncode == 0 and s["skipped_methods"] == {"POST": 1}, s
    assert len([r for r in newdb.received() if r.method == "POST"]) == posts


@pytest.mark.parametrize("content,fmt", [
    (bytes(range(256)) * 64, None),                  # binary, detected as a URL list
    (b"just some text, no WARC here\n", "warc"),     # not a WARC, told it is
    (b"", None),                                     # empty
], ids=["binary", "not-warc", "empty"])
def test_replay_of_an_input_without_requests_exits_1(tmp_path, make_backend, content, fmt):
    b = make_backend("production")
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    args = [path, "--target", b.url] + (["--format", fmt] if fmt else [])
    proc = run_cli("replay", *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "kagami replay:" in proc.stderr and proc.stderr.strip(), proc.stderr
    assert b.received() == []


def test_replay_methods_option_is_checked():
    for bad in ("", "GET,,POST", "GET POST", ",GET"):
        proc = run_cli("replay", "x.warc", "--target", "http://127.0.0.1:1", "--methods", bad)
        assert proc.returncode == 1 and "--methods" in proc.stderr, (bad, proc.stderr)


def test_replay_without_config_uses_default_rules(recorded):
    """No --config: the built-in defaults, without the proxy config's noise
    rules, so the noisy JSON differs (and only it)."""
    production, path, _ = recorded
    proc, s = replay(path, "--target", production.url, "--compare")
    assert proc.returncode == 0, proc.stderr
    assert s["compare"]["differing_endpoints"] == ["GET /api/noisy"]


def test_replay_filter(recorded):
    production, path, _ = recorded
    proc, s = replay(path, "--target", production.url,
                     "--filter", "GET /users/*")
    assert proc.returncode == 0, proc.stderr
    assert [r.target for r in production.received()] == ["/users/1"]
    assert s["sent"] == 1 and s["filtered_out"] == len(REQUESTS) - 1
    production.requests.clear()
    proc, s = replay(path, "--target", production.url, "--filter", "/api/*")
    assert sorted(r.path for r in production.received()) == \
        ["/api/noisy", "/api/real"]


def test_replay_to_dead_target_counts_errors(recorded, make_backend):
    dead = make_backend("dead", fault="refuse")
    _, path, _ = recorded
    proc, s = replay(path, "--target", dead.url, "--compare", "--methods", "*")
    assert proc.returncode == 0, proc.stderr
    assert s["errors"] == len(REQUESTS) and s["answered"] == 0
    assert s["error_kinds"] == {"connection refused": len(REQUESTS)}
    assert s["compare"]["differing"] == len(REQUESTS)


# --- damaged recordings ------------------------------------------------------------


def damaged_copies(path, tmp_path):
    """(cut file, corrupt file, offset where each stops, whole requests
    before it) from a good recording: the third exchange's response is cut
    in half; the third exchange's request has a bad Content-Length."""
    data = path.read_bytes()
    recs = warc_records(data)
    req3, resp3 = recs[5], recs[6]          # warcinfo, (req, resp) x 2, ...
    cut = tmp_path / "cut.warc"
    cut.write_bytes(data[:resp3[0] + (len(resp3[2]) // 2) + 200])
    bad = bytearray(data)
    at = data.index(b"Content-Length: ", req3[0]) + len("Content-Length: ")
    bad[at] = ord("x")
    corrupt = tmp_path / "corrupt.warc"
    corrupt.write_bytes(bytes(bad))
    return cut, resp3[0], corrupt, req3[0]


def test_truncated_recording(recorded, tmp_path):
    production, path, k = recorded
    cut, stop_at, _, _ = damaged_copies(path, tmp_path)
    proc, s = replay(cut, "--target", production.url, "--compare",
                     "--config", k.config, "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    # Three whole request records: two exchanges and a request whose
    # response was cut (replayed, not compared).
    assert [r.target for r in production.received()] == \
        [t for _, t, _ in REQUESTS[:3]]
    assert s["compare"]["compared"] == 2
    assert s["compare"]["not_compared"] == 1
    assert s["input"]["damaged"] and s["input"]["stopped_at"] == stop_at
    assert "truncated" in s["input"]["why"]
    assert "reading stopped at byte %d" % stop_at in proc.stderr
    production.requests.clear()
    strict, s = replay(cut, "--target", production.url, "--strict")
    assert strict.returncode == 2
    assert "reading stopped at byte %d" % stop_at in strict.stderr
    assert len(production.received()) == 3


def test_corrupted_recording(recorded, tmp_path):
    production, path, _ = recorded
    _, _, corrupt, stop_at = damaged_copies(path, tmp_path)
    proc, s = replay(corrupt, "--target", production.url, "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    assert [r.target for r in production.received()] == \
        [t for _, t, _ in REQUESTS[:2]]
    assert s["input"]["stopped_at"] == stop_at
    assert "corrupt" in s["input"]["why"]
    assert "reading stopped at byte %d" % stop_at in proc.stderr
    strict = run_cli("replay", corrupt, "--target", production.url,
                     "--strict")
    assert strict.returncode == 2
    assert "reading stopped at byte %d" % stop_at in strict.stderr


def test_gzipped_recording(recorded, tmp_path):
    """.warc.gz as other tools write it: one gzip member per record."""
    production, path, _ = recorded
    data = path.read_bytes()
    gz = tmp_path / "traffic.warc.gz"
    offsets = [o for o, _, _ in warc_records(data)] + [len(data)]
    gz.write_bytes(b"".join(gzip.compress(data[a:b])
                            for a, b in zip(offsets, offsets[1:])))
    proc, s = replay(gz, "--target", production.url, "--methods", "*")
    assert proc.returncode == 0, proc.stderr
    assert s["sent"] == len(REQUESTS)


# --- imports ---------------------------------------------------------------------------


def test_url_list(tmp_path, make_backend):
    b = make_backend("production")
    urls = tmp_path / "urls.txt"
    urls.write_text("# warm the caches\n/users/1\n\n/text/2?x=1\n"
                    "http://shop.example:8080/users/2\n"
                    "HEAD /text/3\nnot a url\n/status/404")
    proc, s = replay(urls, "--target", b.url, "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    got = b.received()
    assert [(r.method, r.target) for r in got] == [
        ("GET", "/users/1"), ("GET", "/text/2?x=1"), ("GET", "/users/2"),
        ("HEAD", "/text/3"), ("GET", "/status/404")]
    assert got[2].header("Host") == "shop.example:8080"
    assert got[0].header("Host") == "127.0.0.1:%d" % b.port
    assert s["format"] == "urls"
    assert s["input"]["unparseable"] == 1
    assert s["statuses"] == {"200": 4, "404": 1}


def test_nginx_log(tmp_path, make_backend):
    b = make_backend("production")
    log = tmp_path / "access.log"
    line = ('203.0.113.7 - - [10/Oct/2023:13:55:%02d +0000] "%s %s HTTP/1.1"'
            ' 200 612 "%s" "Mozilla/5.0 (test)"\n')
    log.write_text(
        line % (1, "GET", "/users/1", "-") +
        line % (2, "POST", "/login", "-") +
        "garbage that is not a log line\n" +
        '203.0.113.7 - - [10/Oct/2023:13:55:03 +0000] "\\x16\\x03\\x01" 400 '
        '157 "-" "-"\n' +
        line % (4, "GET", "/text/2?page=2", "http://shop.example/") +
        '10.0.0.1 - - [10/Oct/2023:13:55:05 +0000] "GET /users/3 HTTP/1.0"'
        ' 304 0\n')
    proc, s = replay(log, "--target", b.url, "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr
    got = b.received()
    assert [r.target for r in got] == ["/users/1", "/text/2?page=2",
                                       "/users/3"]
    assert all(r.method == "GET" for r in got)
    assert got[0].header("User-Agent") == "Mozilla/5.0 (test)"
    assert got[1].header("Referer") == "http://shop.example/"
    assert got[2].header("User-Agent") is None
    assert s["format"] == "nginx"
    assert s["input"]["skipped"] == 1        # the POST
    assert s["input"]["unparseable"] == 2


# --- pacing ------------------------------------------------------------------------------


def test_speed_preserves_order_and_spacing(tmp_path, make_backend):
    """Recorded at 0, 0.4, 0.6, 1.4 and 1.6 s, written out of order (as a
    recorder writes when earlier requests finish later): --speed 2x sends
    them in arrival order, about half as far apart."""
    b = make_backend("production")
    t0 = 1700000000.0
    at = {"/text/1": 0.0, "/text/2": 0.4, "/text/3": 0.6, "/text/4": 1.4,
          "/text/5": 1.6}
    order = ["/text/2", "/text/1", "/text/3", "/text/5", "/text/4"]
    path = tmp_path / "timed.warc"
    path.write_bytes(b"".join(warc_exchange(p, t0 + at[p]) for p in order))
    proc, s = replay(path, "--target", b.url, "--speed", "2x")
    assert proc.returncode == 0, proc.stderr
    got = b.received()
    assert [r.target for r in got] == sorted(at)
    seen = [r.at - got[0].at for r in got]
    want = [at[p] / 2 for p in sorted(at)]
    for s_, w in zip(seen, want):
        assert abs(s_ - w) < 0.15 + 0.25 * w, (seen, want)
    # The biggest recorded gap is the biggest replayed one.
    gaps = [b_ - a_ for a_, b_ in zip(seen, seen[1:])]
    assert max(range(len(gaps)), key=gaps.__getitem__) == 2
    # --speed 4x is roughly twice as fast again.
    b.requests.clear()
    replay(path, "--target", b.url, "--speed", "4x")
    got = b.received()
    assert got[-1].at - got[0].at < 0.8 * 0.8


def test_rate_concurrency_and_duration(tmp_path, make_backend):
    b = make_backend("production")
    urls = tmp_path / "urls.txt"
    urls.write_text("".join("/users/%d\n" % i for i in range(200)))
    proc, s = replay(urls, "--target", b.url, "--rate", "40/s",
                     "--duration", "1s", "--concurrency", "4")
    assert proc.returncode == 0, proc.stderr
    assert s["stopped"] == "duration"
    assert 20 <= s["sent"] <= 60, s["sent"]
    assert s["sent"] == len(b.received())
    # Keep-alive: a handful of connections, not one per request.
    assert s["connections"] <= 4
    assert len({r.client_port for r in b.received()}) <= 4


def test_slow_target_caps_in_flight(tmp_path, make_backend):
    b = make_backend("production")
    urls = tmp_path / "urls.txt"
    urls.write_text("/slow/300\n" * 6)
    start = time.monotonic()
    proc, s = replay(urls, "--target", b.url, "--concurrency", "2")
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert s["sent"] == 6
    assert took >= 0.85, took  # three rounds of two
    assert len({r.client_port for r in b.received()}) == 2


def test_silent_target_times_out(tmp_path, make_backend):
    b = make_backend("production", fault="hang")
    urls = tmp_path / "urls.txt"
    urls.write_text("/users/1\n/users/2\n")
    proc, s = replay(urls, "--target", b.url, "--timeout", "300ms")
    assert proc.returncode == 0, proc.stderr
    assert s["error_kinds"] == {"timeout": 2}


def test_signal_stops_with_a_summary(tmp_path, make_backend):
    b = make_backend("production")
    urls = tmp_path / "urls.txt"
    urls.write_text("/users/1\n" * 1000)
    proc = subprocess.Popen(
        [str(kagami_bin()), "replay", str(urls), "--target", b.url,
         "--rate", "20", "--json"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=sanitizer_env())
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert not sanitizer_reports(err), err
    s = json.loads(out.strip().splitlines()[-1])
    assert s["stopped"] == "signal"
    assert 5 <= s["sent"] <= 40
    assert s["sent"] == len(b.received())


# --- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ([], "no input FILE"),
    (["FILE"], "--target"),
    (["FILE", "--target", "http://127.0.0.1:1", "--rate", "5", "--speed", "2"],
     "exclude each other"),
    (["FILE", "--target", "ftp://127.0.0.1:1"], "http://host:port or https://host:port"),
    (["FILE", "--target", "127.0.0.1:1"], "http://host:port"),
    (["FILE", "--target", "http://127.0.0.1:1", "--rate", "fast"], "--rate"),
    (["FILE", "--target", "http://127.0.0.1:1", "--bogus"], "unknown option"),
    (["/nonexistent/file", "--target", "http://127.0.0.1:1"], "nonexistent"),
    (["URLS", "--target", "http://127.0.0.1:1", "--speed", "2x"],
     "URL list"),
    (["URLS", "--target", "http://127.0.0.1:1", "--compare"], "WARC"),
])
def test_usage_errors(tmp_path, args, message):
    urls = tmp_path / "urls.txt"
    urls.write_text("/a\n")
    args = [str(urls) if a in ("FILE", "URLS") else a for a in args]
    proc = run_cli("replay", *args)
    assert proc.returncode == 1
    assert message in proc.stderr


def test_help():
    proc = run_cli("replay", "--help")
    assert proc.returncode == 0
    assert "--speed" in proc.stdout and "--compare" in proc.stdout
    assert "replay FILE" in run_cli("--help").stdout


def test_replay_warns_when_its_own_load_dominates(tmp_path, make_backend):
    """Unpaced, a replay keeps --concurrency requests in flight, so the
    target's latencies measure the replay's own queue: the summary says so
    (issue 16); a paced replay well under the cap does not."""
    b = make_backend("production")
    urls = tmp_path / "urls.txt"
    urls.write_text("".join("/slow/20?i=%d\n" % i for i in range(40)))
    proc = run_cli("replay", urls, "--target", b.url, "--concurrency", "4")
    assert proc.returncode == 0, proc.stderr
    assert "note: the replay kept 4 requests in flight (--concurrency)" in proc.stdout, proc.stdout
    proc, s = replay(urls, "--target", b.url, "--concurrency", "4")
    assert s["own_load"]["dominates"] is True and s["own_load"]["saturated_share"] > 0.5, s
    proc = run_cli("replay", urls, "--target", b.url, "--rate", "100")
    assert proc.returncode == 0, proc.stderr
    assert "note: the replay kept" not in proc.stdout, proc.stdout
