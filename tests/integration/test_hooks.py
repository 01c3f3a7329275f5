"""Issue point 5: munge_headers and on_backends_finished, and hooks that fail
(a failing hook is logged with a traceback and the request goes on as if the
hook were absent)."""

import time

import pytest

import backends


def start(make_backend, start_kagami, hooks, newdb_fault=None, options=None):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb", fault=newdb_fault)
    k = start_kagami([production, newdb], hooks=hooks, options=options)
    return production, newdb, k


def poll_lines(path, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


# --- munge_headers ----------------------------------------------------------
MUNGE = """
  munge_headers = function(backend, req, headers)
    headers["X-Seen"] = backend .. " " .. req.method .. " " .. req.path
    if backend ~= "production" then
      headers["X-Shadow"] = "1"
      headers["X-Secret"] = nil
      headers["Authorization"] = "Bearer shadow"
    end
  end,
"""


def test_munge_headers_changes_what_each_backend_gets(make_backend,
                                                      start_kagami):
    production, newdb, k = start(make_backend, start_kagami, MUNGE)
    sent = [("X-Secret", "s3cr3t"), ("Authorization", "Bearer real"),
            ("X-Keep", "kept")]
    resp = k.request("GET", "/echo?m", sent)
    assert resp.status == 200
    master = production.wait_for_requests(1, "/echo")[0]
    shadow = newdb.wait_for_requests(1, "/echo")[0]

    assert master.header("X-Seen") == "production GET /echo"
    assert master.header("X-Shadow") is None
    assert master.header("X-Secret") == "s3cr3t"
    assert master.header("Authorization") == "Bearer real"

    assert shadow.header("X-Seen") == "newdb GET /echo"
    assert shadow.header("X-Shadow") == "1"
    assert shadow.header("X-Secret") is None
    assert shadow.header_all("Authorization") == ["Bearer shadow"]
    assert shadow.header("X-Keep") == "kept"


def test_munge_headers_runs_per_request_on_a_kept_alive_connection(
        make_backend, start_kagami):
    production, newdb, k = start(make_backend, start_kagami, MUNGE)
    with k.connect() as c:
        for i in range(3):
            assert c.request("GET", "/text/%d" % (i + 1)).status == 200
    reqs = newdb.wait_for_requests(3)
    # Shadow copies of consecutive requests may overlap (each goes out as
    # soon as its request is read), so their arrival order is not fixed.
    assert sorted(r.header("X-Seen") for r in reqs) == [
        "newdb GET /text/1", "newdb GET /text/2", "newdb GET /text/3"]


SESSION = """
  munge_headers = function(backend, req, headers)
    if backend ~= "production" then
      headers["X-Kage-Session"] = req.connection.id .. "-" .. req.connection.requests
    end
  end,
"""


def test_req_connection_identifies_the_client_connection(make_backend,
                                                         start_kagami):
    """Kage's session id: req.connection.id is the same for every request
    of one client connection and differs between connections;
    req.connection.requests numbers the requests on it from 1."""
    production, newdb, k = start(make_backend, start_kagami, SESSION)
    with k.connect() as c:
        assert c.request("GET", "/text/1?a").status == 200
        newdb.wait_for_requests(1)
        assert c.request("GET", "/text/1?b").status == 200
        newdb.wait_for_requests(2)
    with k.connect() as c:
        assert c.request("GET", "/text/1?c").status == 200
    reqs = newdb.wait_for_requests(3)
    seen = {r.target.split("?")[1]: r.header("X-Kage-Session") for r in reqs}
    a_id, a_n = seen["a"].split("-")
    b_id, b_n = seen["b"].split("-")
    c_id, c_n = seen["c"].split("-")
    assert (a_n, b_n, c_n) == ("1", "2", "1"), seen
    assert a_id == b_id != c_id, seen
    assert int(a_id) >= 1 and int(c_id) >= 1
    # The master gets what the client sent, nothing added.
    assert all(r.header("X-Kage-Session") is None
               for r in production.wait_for_requests(3))


# --- on_backends_finished ---------------------------------------------------
def finished_hook(out):
    return """
  on_backends_finished = function(backends, req, responses)
    local f = assert(io.open(%s, "a"))
    for _, name in ipairs(backends) do
      local r = responses[name]
      f:write(table.concat({ req.method, req.url, name, tostring(r.status),
        tostring(r.error), r.body and tostring(#r.body) or "nobody",
        type(r.elapsed), type(r.headers) }, "\\t"), "\\n")
    end
    f:close()
  end,
""" % ('"%s"' % out)


def test_on_backends_finished_gets_every_response(make_backend, start_kagami,
                                                  tmp_path):
    out = tmp_path / "finished.tsv"
    production, newdb, k = start(make_backend, start_kagami,
                                 finished_hook(out))
    assert k.get("/diff?x=1").status == 200
    rows = [line.split("\t") for line in poll_lines(out, 2)]
    assert sorted(r[2] for r in rows) == ["newdb", "production"]
    for method, url, name, status, error, nbody, elapsed, headers in rows:
        assert (method, url) == ("GET", "/diff?x=1")
        assert status == "200" and error == "nil"
        assert int(nbody) == len(backends.diff_body(
            None if name == "production" else "newdb"))
        assert elapsed == "number" and headers == "table"


def test_on_backends_finished_sees_a_failed_shadow(make_backend, start_kagami,
                                                   tmp_path):
    out = tmp_path / "finished.tsv"
    production, newdb, k = start(make_backend, start_kagami,
                                 finished_hook(out), newdb_fault="reset")
    assert k.get("/text/5").body == backends.text_body(5)
    rows = {r[2]: r for r in (line.split("\t") for line in poll_lines(out, 2))}
    assert rows["production"][3] == "200"
    assert rows["newdb"][4] != "nil", "no error for the reset shadow"
    assert rows["newdb"][3] in ("nil", "0")


def test_on_backends_finished_gets_the_whole_diff(make_backend, start_kagami,
                                                  tmp_path):
    """result.diff is passed by length: a NUL byte in a body (a page compared
    as text) does not end it before the changed price."""
    out = tmp_path / "diff.bin"
    hooks = """
  on_backends_finished = function(backends, req, responses, result)
    local f = assert(io.open(%s, "wb"))
    f:write(result.diff, "\\n--end--\\n")
    f:close()
  end,
""" % ('"%s"' % out)
    _, _, k = start(make_backend, start_kagami, hooks)
    assert k.get("/page?same=1&quiet=1&nul=1&real=1").status == 200
    deadline = time.monotonic() + 5
    while not (out.exists() and out.read_bytes().endswith(b"--end--\n")):
        assert time.monotonic() < deadline, "the hook wrote nothing"
        time.sleep(0.05)
    diff = out.read_bytes()
    assert b"\0" in diff  # the context line with the NUL byte
    assert b"<p>Price: %d</p>" % backends.API_REAL_PRICE in diff, diff[-300:]


# --- failing hooks ------------------------------------------------------------
FAILING = {
    "select_backends": """
  select_backends = function(req) error("boom-select") end,
""",
    "select_backends_runtime": """
  select_backends = function(req) local t = nil; return t.boom_field end,
""",
    "select_backends_bad_return": """
  select_backends = function(req) return 42 end,
""",
    "munge_headers": """
  munge_headers = function(backend, req, headers)
    headers["X-Shadow"] = "1"
    error("boom-munge")
  end,
""",
    "on_backends_finished": """
  on_backends_finished = function(backends, req, responses)
    error("boom-finished")
  end,
""",
}


@pytest.mark.parametrize("which", sorted(FAILING))
def test_failing_hook_is_logged_and_ignored(make_backend, start_kagami,
                                            which):
    production, newdb, k = start(make_backend, start_kagami, FAILING[which])
    with k.connect() as c:
        for i in range(3):  # the hook keeps failing; nothing accumulates
            resp = c.request("GET", "/text/9")
            assert resp.status == 200
            assert resp.body == backends.text_body(9)
    # As if the hook were absent: default selection, unchanged headers,
    # and a diff-log line per request.
    entries = k.wait_log(3)
    assert all(set(e["backends"]) == {"production", "newdb"} for e in entries)
    shadow = newdb.wait_for_requests(3)
    assert all(r.header("X-Shadow") is None for r in shadow)
    err = k.stderr()
    if which != "select_backends_bad_return":
        assert "traceback" in err.lower(), err[-2000:]
    marker = {"select_backends": "boom-select",
              "select_backends_runtime": "attempt to index a nil value",
              "munge_headers": "boom-munge",
              "on_backends_finished": "boom-finished"}.get(which, "select_backends")
    assert marker in err, err[-2000:]


def test_endless_hook_is_cut_off(make_backend, start_kagami):
    """config.h: hook_budget bounds the Lua instructions per call."""
    production, newdb, k = start(
        make_backend, start_kagami,
        "  select_backends = function(req) while true do end end,\n",
        options={"hook_budget": 100000})
    t0 = time.monotonic()
    assert k.get("/text/2").body == backends.text_body(2)
    assert time.monotonic() - t0 < 3.0
    assert k.get("/text/3").body == backends.text_body(3)
