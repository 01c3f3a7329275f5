"""Issue point 6: one JSON line in diff_log per request sent to more than one
backend, in the DESIGN.md format. Lines are written asynchronously, so every
check polls the file (Kagami.wait_log) or stops the proxy first."""

import re
import threading

import backends
from checks import entry_for

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_equal_responses(proxy):
    k = proxy.kagami
    assert k.get("/text/20?x=1").status == 200
    e = k.wait_log_url("/text/20?x=1")[0]
    assert isinstance(e["id"], str) and e["id"]
    assert TS.match(e["ts"]), e["ts"]
    assert e["method"] == "GET"
    assert e["equal"] is True
    assert not e.get("diff")
    assert not e.get("truncated")
    n = len(backends.text_body(20))
    assert set(e["backends"]) == {"production", "newdb"}
    for name, b in e["backends"].items():
        assert b["status"] == 200, name
        assert b["bytes"] == n, name
        assert isinstance(b["elapsed_ms"], (int, float)), name
        assert 0 <= b["elapsed_ms"] < 5000, name
        assert "error" not in b


def test_different_bodies_give_a_unified_diff(proxy):
    k = proxy.kagami
    assert k.get("/diff").body == backends.diff_body(None)
    e = k.wait_log_url("/diff")[0]
    assert e["equal"] is False
    diff = e["diff"]
    assert diff.startswith("--- production\n+++ newdb\n@@ "), diff
    lines = diff.splitlines()
    assert "-price: 12.50" in lines
    assert "+price: 12.49" in lines
    # Unchanged lines are not reported as changed.
    assert "-item: teapot" not in lines and "+item: teapot" not in lines
    assert e["backends"]["production"]["bytes"] == len(backends.diff_body(None))
    assert e["backends"]["newdb"]["bytes"] == len(backends.diff_body("newdb"))


def test_different_status_is_not_equal(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    newdb.route = lambda req: backends.Reply(500, "Internal Server Error",
                                             [], backends.text_body(1))
    k = start_kagami([production, newdb])
    assert k.get("/text/1").status == 200
    e = k.wait_log_url("/text/1")[0]
    assert e["backends"]["production"]["status"] == 200
    assert e["backends"]["newdb"]["status"] == 500
    assert e["equal"] is False


def test_truncated_when_body_exceeds_max_capture_bytes(make_backend,
                                                       start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb],
                     options={"max_capture_bytes": 1000})
    resp = k.get("/big/5000")
    assert resp.body == backends.big_body(5000)  # the client gets it all
    e = k.wait_log_url("/big/5000")[0]
    assert e["truncated"] is True
    assert k.get("/big/900").body == backends.big_body(900)
    assert not k.wait_log_url("/big/900")[0].get("truncated")


def test_one_line_per_shadowed_request_with_unique_ids(proxy):
    k = proxy.kagami
    urls = ["/text/%d" % i for i in range(1, 16)]
    with k.connect() as c:
        for u in urls:
            assert c.request("GET", u).status == 200
    entries = k.wait_log(len(urls))
    assert k.stop() == 0
    entries = k.log_entries()
    assert sorted(e["url"] for e in entries) == sorted(urls)
    assert len({e["id"] for e in entries}) == len(urls)


def test_master_only_request_writes_no_line(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    hook = """
  select_backends = function(req)
    if req.path == "/solo" then return { "production" } end
  end,
"""
    k = start_kagami([production, newdb], hooks=hook)
    assert k.get("/solo").status == 404
    assert k.get("/text/1").status == 200
    assert k.stop() == 0
    assert [e["url"] for e in k.log_entries()] == ["/text/1"]


def test_lines_are_complete_json_under_concurrency(proxy):
    k = proxy.kagami
    errors = []

    def client(j):
        try:
            with k.connect() as c:
                for i in range(10):
                    r = c.request("GET", "/diff?c=%d&i=%d" % (j, i))
                    assert r.status == 200
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(j,)) for j in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert k.stop() == 0
    raw = k.diff_log.read_bytes()
    assert raw.endswith(b"\n")
    entries = k.log_entries()  # json.loads each line: fails on interleaving
    assert len(entries) == 50
    assert all(e["equal"] is False for e in entries)
    entry_for(entries, "/diff?c=4&i=9")
