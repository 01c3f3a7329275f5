"""The admin listener: /metrics, /healthz, the token, the JSON API and the
dashboard's files, against a real kagami with real backends.

/metrics is checked by a strict parser of the Prometheus text format
(0.0.4) written here: every line must be a HELP, TYPE or sample line,
families must not interleave, histogram buckets must be cumulative and end
in +Inf equal to _count.
"""

import json
import math
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest

import rawhttp
from backends import free_port
from harness import (kagami_bin, render_config, sanitizer_env,
                     sanitizer_reports)

TOKEN = "s3cret-t0ken"


# --- a strict parser of the Prometheus text format -------------------------
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(AssertionError):
    pass


def parse_float(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)",
                        text):
        raise FormatError("not a number: %r" % text)
    return float(text)


def parse_labels(text, lineno):
    """'a="x",b="y\\"z"' -> {a: 'x', b: 'y"z'} (escapes: \\\\ \\" \\n)."""
    labels = {}
    i = 0
    while i < len(text):
        m = re.match(LABEL_NAME + "=\"", text[i:])
        if not m:
            raise FormatError("line %d: bad label at %r" % (lineno, text[i:]))
        name = m.group(0)[:-2]
        i += len(m.group(0))
        value = []
        while True:
            if i >= len(text):
                raise FormatError("line %d: unterminated label value" % lineno)
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise FormatError("line %d: bad escape \\%s" % (lineno, nxt))
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            elif ch == '"':
                i += 1
                break
            elif ch == "\n":
                raise FormatError("line %d: raw newline in label" % lineno)
            else:
                value.append(ch)
                i += 1
        if name in labels:
            raise FormatError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise FormatError("line %d: expected ',' in labels" % lineno)
            i += 1
            if i == len(text):
                raise FormatError("line %d: trailing ',' in labels" % lineno)
    return labels


def family_of(sample_name, types):
    """The family a sample belongs to (histogram suffixes stripped)."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name[:-len(suffix)]
        if sample_name.endswith(suffix) and types.get(base) in (
                "histogram", "summary"):
            return base
    return sample_name


def parse_metrics(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}
    or raises FormatError for anything the format does not allow."""
    if not text.endswith("\n"):
        raise FormatError("does not end with a newline")
    families = {}
    types, helps = {}, {}
    order = []          # families in the order their lines appear
    seen_series = set()
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if line == "":
            raise FormatError("line %d: empty line" % lineno)
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r") (.*)", line)
            if not m:
                raise FormatError("line %d: comment that is not HELP/TYPE: %r"
                                  % (lineno, line))
            kind, name, rest = m.groups()
            if order and order[-1] != name and name in order:
                raise FormatError("line %d: %s resumes after another family"
                                  % (lineno, name))
            if kind == "TYPE":
                if rest not in TYPES:
                    raise FormatError("line %d: type %r" % (lineno, rest))
                if name in types:
                    raise FormatError("line %d: second TYPE for %s"
                                      % (lineno, name))
                if name in families and families[name]["samples"]:
                    raise FormatError("line %d: TYPE after samples" % lineno)
                types[name] = rest
            else:
                if name in helps:
                    raise FormatError("line %d: second HELP for %s"
                                      % (lineno, name))
                if re.search(r"\\[^\\n]", rest):
                    raise FormatError("line %d: bad escape in HELP" % lineno)
                helps[name] = rest
            families.setdefault(name, {"samples": []})
            if not order or order[-1] != name:
                order.append(name)
            continue
        m = re.fullmatch(r"(" + NAME + r")(\{(.*)\})? (\S+)( -?\d+)?", line)
        if not m:
            raise FormatError("line %d: not a sample: %r" % (lineno, line))
        name, _, label_text, value_text, _ = m.groups()
        labels = parse_labels(label_text or "", lineno)
        value = parse_float(value_text)
        fam = family_of(name, types)
        if order and order[-1] != fam and fam in order:
            raise FormatError("line %d: family %s interleaved" % (lineno, fam))
        if not order or order[-1] != fam:
            order.append(fam)
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise FormatError("line %d: duplicate series %s" % (lineno, key))
        seen_series.add(key)
        families.setdefault(fam, {"samples": []})["samples"].append(
            (name, labels, value))
    for name, fam in families.items():
        fam["type"] = types.get(name, "untyped")
        fam["help"] = helps.get(name)
        if fam["type"] == "counter":
            for s in fam["samples"]:
                if not s[2] >= 0:
                    raise FormatError("counter %s is %r" % (s[0], s[2]))
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return families


def check_histogram(name, samples):
    """Per label set: buckets with increasing le, cumulative counts, a last
    bucket le=+Inf equal to _count, and a _sum."""
    series = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            if "le" not in labels:
                raise FormatError("%s bucket without le" % name)
            s["buckets"].append((parse_float(labels["le"]), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
        else:
            raise FormatError("%s: stray sample %s" % (name, sname))
    for rest, s in series.items():
        les = [le for le, _ in s["buckets"]]
        counts = [c for _, c in s["buckets"]]
        if not les or les[-1] != math.inf:
            raise FormatError("%s%s: no +Inf bucket" % (name, rest))
        if les != sorted(les) or len(set(les)) != len(les):
            raise FormatError("%s%s: le not increasing: %r" % (name, rest, les))
        if counts != sorted(counts):
            raise FormatError("%s%s: buckets not cumulative: %r"
                              % (name, rest, counts))
        if s["count"] is None or s["sum"] is None:
            raise FormatError("%s%s: missing _sum or _count" % (name, rest))
        if counts[-1] != s["count"]:
            raise FormatError("%s%s: +Inf bucket %r != _count %r"
                              % (name, rest, counts[-1], s["count"]))


def test_parser_rejects_what_it_should():
    """The checker itself: each of these breaks a rule of the format."""
    good = ("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
            "# TYPE h histogram\n"
            'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')
    parse_metrics(good)
    bad = [
        good.rstrip("\n"),
        good + "\n",
        good + "# random comment\n",
        good + "a_total{x=\"1\",} 1\n",
        good + "b{x=\"\\q\"} 1\n",
        good + "b 1\nb 2\n",
        good + "b one\n",
        good + "a_total 2\n",  # family resumed
        good.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 3'),
        good.replace('h_bucket{le="1"} 1', 'h_bucket{le="1"} 5'),
        good.replace('h_bucket{le="+Inf"} 2\n', ""),
        "# TYPE c counter\nc -1\n",
    ]
    for text in bad:
        with pytest.raises(FormatError):
            parse_metrics(text)


def sample(families, family, name=None, **labels):
    """The value of one sample (labels must match exactly those given)."""
    name = name or family
    for sname, slabels, value in families[family]["samples"]:
        if sname == name and slabels == labels:
            return value
    raise AssertionError("no sample %s%r in %r" % (
        name, labels, families[family]["samples"]))


# --- talking to the admin listener -----------------------------------------
def admin_get(port, target, headers=None, method="GET"):
    with rawhttp.Connection(port) as c:
        return c.request(method, target, headers=headers)


def auth(token=TOKEN):
    return [("Authorization", "Bearer " + token)]


def wait_metrics(port, pred, headers=None, timeout=6.0):
    """Scrapes until pred(families) holds (counters are published once a
    second); returns the last parse."""
    deadline = time.monotonic() + timeout
    while True:
        r = admin_get(port, "/metrics", headers)
        assert r.status == 200, r.body
        fams = parse_metrics(r.body.decode("utf-8"))
        if pred(fams) or time.monotonic() > deadline:
            return fams
        time.sleep(0.2)


@pytest.fixture
def admin(make_backend, start_kagami):
    """production + newdb (differs on /diff) + kagami with an admin port
    (and a token when asked). Returns a function of the options."""

    def start(token=None, options=None):
        production = make_backend("production")
        newdb = make_backend("newdb", variant="newdb")
        port = free_port()
        opts = {"admin": "127.0.0.1:%d" % port}
        if token:
            opts["admin_token"] = token
        opts.update(options or {})
        k = start_kagami([production, newdb], options=opts)
        k.admin_port = port
        return k

    return start


def send_traffic(k, n_diff=6, n_same=4):
    for i in range(n_diff):
        assert k.get("/diff?n=%d" % i).status == 200
    for i in range(n_same):
        assert k.get("/text/%d" % (i + 1)).status == 200
    k.wait_log(n_diff + n_same)


# --- /metrics ---------------------------------------------------------------
def test_failed_shadow_is_not_differing(make_backend, start_kagami):
    """A refused shadow makes failed comparisons, counted apart from the
    differing ones in /metrics and in the API (issue 12)."""
    production = make_backend("production")
    dead = make_backend("newdb", fault="refuse")
    port = free_port()
    k = start_kagami([production, dead], options={"admin": port})
    for i in range(3):
        assert k.get("/api/%d" % i).status == 200
    fams = wait_metrics(port, lambda f: sample(f, "kagami_compared_total") >= 3)
    assert sample(fams, "kagami_differing_total") == 0
    assert sample(fams, "kagami_compare_failed_total") == 3
    wait_stored(port, 3)
    (e,) = api(port, "/api/endpoints")["endpoints"]
    assert (e["differing"], e["errors"], e["error_rate"]) == (0, 3, 1.0)
    series = api(port, "/api/timeseries?bucket=60")["buckets"]
    assert sum(b["errors"] for b in series) == 3
    assert sum(b["differing"] for b in series) == 0


def test_metrics_format_and_counts(admin):
    k = admin()
    send_traffic(k)
    fams = wait_metrics(k.admin_port, lambda f: sample(
        f, "kagami_compared_total") >= 10)
    for fam in ("kagami_requests_total", "kagami_shadowed_total",
                "kagami_compared_total", "kagami_differing_total",
                "kagami_compare_failed_total", "kagami_dropped_total", "kagami_results_dropped_total",
                "kagami_backend_requests_total", "kagami_backend_errors_total",
                "kagami_connections_open", "kagami_backend_latency_seconds",
                "kagami_results_pending", "kagami_backend_inflight"):
        assert fam in fams, fam
        assert fams[fam]["help"], fam
    assert fams["kagami_requests_total"]["type"] == "counter"
    assert fams["kagami_connections_open"]["type"] == "gauge"
    assert fams["kagami_backend_latency_seconds"]["type"] == "histogram"
    assert sample(fams, "kagami_requests_total") >= 10
    assert sample(fams, "kagami_shadowed_total") >= 10
    assert sample(fams, "kagami_compared_total") == 10
    assert sample(fams, "kagami_differing_total") == 6
    assert sample(fams, "kagami_dropped_total") == 0
    assert fams["kagami_results_pending"]["type"] == "gauge"
    fams = wait_metrics(k.admin_port, lambda f: sample(
        f, "kagami_results_pending") == 0)  # all ten compared and stored
    assert sample(fams, "kagami_results_pending") == 0
    for b in ("production", "newdb"):
        assert sample(fams, "kagami_backend_requests_total", backend=b) >= 10
        assert sample(fams, "kagami_backend_errors_total", backend=b) == 0
        count = sample(fams, "kagami_backend_latency_seconds",
                       "kagami_backend_latency_seconds_count", backend=b)
        assert count == 10
        total = sample(fams, "kagami_backend_latency_seconds",
                       "kagami_backend_latency_seconds_sum", backend=b)
        assert 0 < total < 10  # seconds, for ten local requests
        # Local requests finish well within the 1 s bucket.
        assert sample(fams, "kagami_backend_latency_seconds",
                      "kagami_backend_latency_seconds_bucket", backend=b,
                      le="1") == 10


def test_metrics_connections_open_and_backend_errors(make_backend,
                                                     start_kagami):
    production = make_backend("production")
    dead = make_backend("dead", fault="refuse")
    port = free_port()
    k = start_kagami([production, dead], options={"admin": port})
    held = [k.connect() for _ in range(3)]
    try:
        for c in held:
            assert c.request("GET", "/text/2").status == 200
        k.wait_log(3)
        fams = wait_metrics(port, lambda f: sample(
            f, "kagami_backend_errors_total", backend="dead") >= 3)
        assert sample(fams, "kagami_backend_errors_total", backend="dead") == 3
        assert sample(fams, "kagami_backend_errors_total",
                      backend="production") == 0
        assert sample(fams, "kagami_connections_open") >= 3
    finally:
        for c in held:
            c.close()


def test_max_endpoints_caps_the_tracked_endpoints(make_backend, start_kagami):
    """Past max_endpoints, new endpoints share one entry, "(other)": the
    statistics' memory stays bounded whatever paths clients send."""
    production = make_backend("production")
    newdb = make_backend("newdb")
    port = free_port()
    k = start_kagami([production, newdb],
                     options={"admin": port, "max_endpoints": 3})
    paths = ["/text/%d" % n for n in (2, 3)] + ["/echo", "/status/201",
                                                  "/json/1", "/html/1"]
    for p in paths:
        k.get(p)
    k.wait_log(len(paths))
    fams = wait_metrics(port, lambda f: sample(f, "kagami_endpoints") >= 4)
    # three endpoints of their own, and "(other)" for the rest
    assert sample(fams, "kagami_endpoints") == 4
    # every request still counts in the latency totals
    assert sample(fams, "kagami_backend_latency_seconds",
                  "kagami_backend_latency_seconds_count",
                  backend="production") == len(paths)


def test_metrics_inflight_gauges(make_backend, start_kagami):
    """Requests waiting on a slow shadow show in its in-flight gauge (what
    shadow_max_inflight is checked against) and leave it when answered."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    port = free_port()
    k = start_kagami([production, newdb], options={"admin": port})
    for _ in range(3):
        assert k.get("/slowpage/1500").status == 200  # the master answers at once
    fams = wait_metrics(port, lambda f: sample(
        f, "kagami_backend_inflight", backend="newdb") == 3)
    assert fams["kagami_backend_inflight"]["type"] == "gauge"
    assert sample(fams, "kagami_backend_inflight", backend="newdb") == 3
    assert sample(fams, "kagami_backend_inflight", backend="production") == 0
    assert sample(fams, "kagami_backend_inflight_bytes", backend="production") == 0
    k.wait_log(3)
    fams = wait_metrics(port, lambda f: sample(
        f, "kagami_backend_inflight", backend="newdb") == 0)
    assert sample(fams, "kagami_backend_inflight", backend="newdb") == 0
    assert sample(fams, "kagami_backend_inflight_bytes", backend="newdb") == 0


# --- /healthz, the token, loopback ------------------------------------------
def test_healthz(admin):
    k = admin()
    r = admin_get(k.admin_port, "/healthz")
    assert r.status == 200
    assert r.body == b"ok\n"
    assert r.header("Content-Type").startswith("text/plain")


def test_token(admin):
    k = admin(token=TOKEN)
    port = k.admin_port
    # /healthz never needs it.
    assert admin_get(port, "/healthz").status == 200
    for path in ("/metrics", "/api/endpoints", "/api/results",
                 "/api/results/x", "/api/timeseries"):
        r = admin_get(port, path)
        assert r.status == 401, path
        assert r.header("WWW-Authenticate").startswith("Bearer")
        for bad in ("Bearer wrong", "Bearer " + TOKEN + "x",
                    "Bearer " + TOKEN[:-1], "Basic " + TOKEN, TOKEN,
                    "Bearer", "Bearer  "):
            r = admin_get(port, path, [("Authorization", bad)])
            assert r.status == 401, (path, bad)
    r = admin_get(port, "/metrics", auth())
    assert r.status == 200
    parse_metrics(r.body.decode())
    r = admin_get(port, "/metrics", [("Authorization", "bearer  " + TOKEN)])
    assert r.status == 200
    # The dashboard's files hold no data; its API calls carry the token.
    r = admin_get(port, "/")
    assert r.status == 200


def test_token_change_applies_on_reload(admin):
    """SIGHUP with a new admin_token: the old one stops working at once."""
    k = admin(token=TOKEN)
    assert admin_get(k.admin_port, "/metrics", auth()).status == 200
    k.config.write_text(k.config.read_text().replace(TOKEN, "n3w-t0ken"))
    k.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reloaded" not in k.stderr():
        assert time.monotonic() < deadline, k.stderr()
        time.sleep(0.05)
    assert admin_get(k.admin_port, "/metrics", auth()).status == 401
    assert admin_get(k.admin_port, "/metrics", auth("n3w-t0ken")).status == 200


def listening_addresses(port):
    """Local addresses of TCP sockets listening on `port` (from /proc)."""
    found = []
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(path).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            addr, p = fields[1].split(":")
            if int(p, 16) == port and fields[3] == "0A":  # LISTEN
                found.append(addr)
    return found


def test_bare_port_binds_loopback_only(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    port = free_port()
    k = start_kagami([production, newdb], options={"admin": port})
    assert admin_get(port, "/healthz").status == 200
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1
    assert "admin http://127.0.0.1:%d/" % port in k.stderr()


def test_admin_port_taken_exits_1(make_backend, tmp_path):
    """A taken admin port stops kagami before it serves anyone: exit 1 with
    the address in the message, and a clean shutdown."""
    production = make_backend("production")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    listen = free_port()
    config = tmp_path / "kagami.lua"
    config.write_text(render_config(
        "127.0.0.1:%d" % listen, [production], "production",
        options={"admin": "127.0.0.1:%d" % port}))
    try:
        proc = subprocess.run([str(kagami_bin()), "run", str(config)],
                              capture_output=True, text=True, timeout=30,
                              errors="replace", env=sanitizer_env(),
                              cwd=tmp_path, stdin=subprocess.DEVNULL)
    finally:
        taken.close()
    assert proc.returncode == 1, proc.stderr
    assert "admin 127.0.0.1:%d: address already in use" % port in proc.stderr
    assert not sanitizer_reports(proc.stderr), proc.stderr


# --- HTTP behaviour ----------------------------------------------------------
def test_http_errors_and_keep_alive(admin):
    k = admin()
    port = k.admin_port
    r = admin_get(port, "/nope")
    assert r.status == 404
    with rawhttp.Connection(port) as c:
        c.send(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        r = c.read_response()
        assert r.status == 405
        assert r.header("Allow") == "GET, HEAD"
        assert c.closed_by_peer()
    with rawhttp.Connection(port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        assert c.read_response().status == 400
        assert c.closed_by_peer()
    with rawhttp.Connection(port) as c:
        c.send_lenient(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 40000
                       + b"\r\n\r\n")
        assert c.read_response().status == 431
    # Keep-alive, HEAD, and two pipelined requests answered in order.
    with rawhttp.Connection(port) as c:
        r1 = c.request("GET", "/healthz")
        r2 = c.request("HEAD", "/healthz")
        assert (r1.status, r2.status) == (200, 200)
        assert r2.body == b"" and r2.header("Content-Length") == "3"
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_response().status == 404
        r = c.request("GET", "/healthz", headers=[("Connection", "close")])
        assert r.status == 200 and "close" in r.connection_tokens()
        assert c.closed_by_peer()


def test_stop_with_admin_connections_open(admin):
    """SIGTERM ends kagami even with idle and half-sent admin requests."""
    k = admin()
    idle = rawhttp.Connection(k.admin_port)
    assert idle.request("GET", "/healthz").status == 200
    partial = rawhttp.Connection(k.admin_port)
    partial.send(b"GET /metr")
    time.sleep(0.1)
    assert k.stop() == 0
    idle.close()
    partial.close()


# --- the dashboard's files ---------------------------------------------------
def test_dashboard_files(admin):
    k = admin()
    port = k.admin_port
    r = admin_get(port, "/")
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    csp = r.header("Content-Security-Policy")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.header("X-Content-Type-Options") == "nosniff"
    html = r.body.decode()
    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', html)
            if not r.startswith("#")]  # in-page links
    assert refs, html
    for ref in refs:
        # Everything comes from us: no CDN, no external font.
        assert ref.startswith("/") and not ref.startswith("//"), ref
        f = admin_get(port, ref)
        assert f.status == 200, ref
        etag = f.header("ETag")
        assert etag and etag.startswith('"')
        again = admin_get(port, ref, [("If-None-Match", etag)])
        assert again.status == 304 and again.body == b""
        body = f.body.decode()
        assert not re.search(r"https?://(?!127\.0\.0\.1|www\.w3\.org)", body), ref
    js = admin_get(port, "/app.js")
    assert js.header("Content-Type") == "text/javascript; charset=utf-8"


# --- the JSON API ------------------------------------------------------------
def api(port, target, token=None, status=200):
    r = admin_get(port, target, auth(token) if token else None)
    assert r.status == status, (target, r.status, r.body[:300])
    if status != 200:
        return r.body.decode()
    assert r.header("Content-Type") == "application/json"
    return json.loads(r.body)


def wait_stored(port, count, token=None, timeout=10.0):
    """Polls until the store has counted `count` results (writes are
    batched; every result is counted, only some are kept one by one)."""
    deadline = time.monotonic() + timeout
    while True:
        got = api(port, "/api/endpoints", token)["compared"]
        if got >= count or time.monotonic() > deadline:
            assert got >= count, "%d results stored, wanted %d" % (got, count)
            return got
        time.sleep(0.1)


def q(**params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def test_api_after_traffic(admin):
    k = admin(token=TOKEN)
    port = k.admin_port
    send_traffic(k)
    wait_stored(port, 10, TOKEN)

    eps = api(port, "/api/endpoints?since=1h", TOKEN)
    by_name = {e["endpoint"]: e for e in eps["endpoints"]}
    assert eps["compared"] == 10 and eps["differing"] == 6
    diff, text = by_name["GET /diff"], by_name["GET /text/:id"]
    assert (diff["compared"], diff["differing"]) == (6, 6)
    assert (text["compared"], text["differing"]) == (4, 0)
    assert diff["difference_rate"] == 1.0 and diff["top_differences"]
    assert [b["name"] for b in diff["backends"]] == ["production", "newdb"]
    assert diff["backends"][0]["role"] == "master"
    assert diff["backends"][0]["p50_ms"] > 0
    # Most in need of a look first.
    assert eps["endpoints"][0]["endpoint"] == "GET /diff"
    only = api(port, "/api/endpoints?" + q(endpoint="GET /text/*"), TOKEN)
    assert [e["endpoint"] for e in only["endpoints"]] == ["GET /text/:id"]

    page = api(port, "/api/results?" + q(endpoint="GET /diff", differing=1,
                                          limit=4), TOKEN)
    assert len(page["results"]) == 4
    assert all(not r["equal"] for r in page["results"])
    rest = api(port, "/api/results?" + q(endpoint="GET /diff", differing=1,
                                          before=page["next_before"]), TOKEN)
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(ids) == 6 == len(set(ids))
    assert ids == sorted(ids, reverse=True)  # newest first
    # Every differing result is kept, and a sample of the equal ones: the
    # first two per endpoint per minute (store_keep_equal_per_minute).
    every = api(port, "/api/results?" + q(differing=0), TOKEN)["results"]
    assert 8 <= len(every) <= 10
    assert sum(not r["equal"] for r in every) == 6

    one = api(port, "/api/results/" + ids[0], TOKEN)
    assert one["id"] == ids[0] and one["url"].startswith("/diff")
    assert one["differences"] and one["diff"].startswith("--- production")
    master, shadow = one["backends"]
    assert "12.50" in master["body"] and "12.49" in shadow["body"]

    series = api(port, "/api/timeseries?bucket=60&since=1h", TOKEN)
    assert sum(b["compared"] for b in series["buckets"]) == 10
    assert sum(b["differing"] for b in series["buckets"]) == 6
    series = api(port, "/api/timeseries?" + q(endpoint="GET /diff",
                                              bucket=3600), TOKEN)
    assert sum(b["compared"] for b in series["buckets"]) == 6


def test_api_bad_parameters(admin):
    k = admin()
    port = k.admin_port
    for target in ("/api/endpoints?since=yesterday", "/api/endpoints?since=-1h",
                   "/api/results?limit=0", "/api/results?limit=5000",
                   "/api/results?limit=ten", "/api/results?differing=maybe",
                   "/api/timeseries?bucket=0", "/api/timeseries?bucket=x",
                   "/api/results?endpoint=%zz"):
        body = api(port, target, status=400)
        assert body.strip(), target
    api(port, "/api/results/1a2b3c", status=404)
    api(port, "/api/results/", status=404)
    api(port, "/api/nothing", status=404)


def test_api_without_store(make_backend, start_kagami):
    production = make_backend("production")
    port = free_port()
    start_kagami([production], options={"admin": port, "store": False})
    body = api(port, "/api/endpoints", status=503)
    assert "store" in body
    assert admin_get(port, "/metrics").status == 200


# --- API queries run off the loop ---------------------------------------------
class BlockedStore:
    """Makes the admin API's queries wait, deterministically: the store's
    path is swapped for a FIFO, so each query job blocks opening it, on the
    thread pool, until release(). kagami's own writer keeps the file it has
    open (no traffic flows meanwhile). release() wakes the blocked jobs
    (they then read the real store again, or fail: either answers)."""

    def __init__(self, path):
        self.path = path
        self.real = path.with_name(path.name + ".real")
        self.released = False

    def __enter__(self):
        os.rename(self.path, self.real)
        os.mkfifo(self.path)
        return self

    def release(self):
        if self.released:
            return
        self.released = True
        try:  # possible without blocking only while a job has it open
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            fd = None
        os.rename(self.real, self.path)  # new jobs see the store again
        if fd is not None:
            os.close(fd)  # EOF for the jobs reading the FIFO

    def __exit__(self, *exc):
        self.release()


def send_api(port, target="/api/endpoints?since=all"):
    """A connection with one request sent and its answer not read."""
    c = rawhttp.Connection(port)
    c.send(rawhttp.build_request("GET", target, [("Host", "x")]))
    return c


def no_answer_yet(c, wait=0.3):
    c.sock.settimeout(wait)
    try:
        data = c.sock.recv(1)
    except socket.timeout:
        return True
    finally:
        c.sock.settimeout(rawhttp.DEFAULT_TIMEOUT)
    c.reader.buf += data
    return False


def test_api_query_does_not_block_the_loop(admin):
    """While API queries wait on the store, /healthz and /metrics answer
    at once; two queries run, eight wait their turn, more get 503 with
    Retry-After; once the store answers, every waiting request is
    answered, in order on its connection."""
    k = admin()
    port = k.admin_port
    send_traffic(k)
    wait_stored(port, 10)
    with BlockedStore(k.workdir / "kagami.db") as blocked:
        slow = send_api(port)
        assert no_answer_yet(slow)
        for path in ("/healthz", "/metrics", "/"):
            r, secs = rawhttp.timed_request(port, "GET", path)
            assert r.status == 200 and secs < 1.0, (path, secs)
        # A pipelined /healthz waits behind the API answer: order holds.
        slow.send(rawhttp.build_request("GET", "/healthz", [("Host", "x")]))
        assert no_answer_yet(slow)
        waiting = [send_api(port, "/api/results?limit=3")]  # the 2nd runs
        waiting += [send_api(port, "/api/timeseries") for _ in range(8)]
        time.sleep(0.2)
        over = rawhttp.request(port, "GET", "/api/endpoints")
        assert over.status == 503, over.body
        assert over.header("Retry-After") == "1"
        assert all(no_answer_yet(c, 0.05) for c in waiting)
        assert rawhttp.request(port, "GET", "/healthz").status == 200
        blocked.release()
        r = slow.read_response()
        assert r.status in (200, 503), r.body
        assert slow.read_response().body == b"ok\n"
        for c in waiting:
            assert c.read_response().status in (200, 503)
            c.close()
        slow.close()
    # Queued jobs ran after the release: they found the store.
    eps = api(port, "/api/endpoints?since=1h")
    assert eps["compared"] == 10


def test_api_client_gone_before_answer(admin):
    """Clients that leave while their query runs or waits (reset, close,
    half-close, a pipelined request behind) leave nothing behind: no
    crash, no leak (the ASan build checks at exit), and kagami answers
    the next client."""
    k = admin()
    port = k.admin_port
    send_traffic(k)
    wait_stored(port, 10)
    with BlockedStore(k.workdir / "kagami.db"):
        conns = [send_api(port) for _ in range(5)]
        conns[1].send(rawhttp.build_request("GET", "/healthz", [("Host", "x")]))
        time.sleep(0.2)
        # A reset, a close, a half-close (kagami still answers that one).
        conns[0].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conns[0].close()
        conns[1].close()
        conns[2].sock.shutdown(socket.SHUT_WR)
        conns[3].close()  # one that was still waiting in the queue
        conns[4].close()
        time.sleep(0.2)
        assert rawhttp.request(port, "GET", "/healthz").status == 200
    r = conns[2].read_response()
    assert r.status in (200, 503)
    assert conns[2].closed_by_peer()
    conns[2].close()
    assert api(port, "/api/endpoints")["compared"] == 10
    assert k.stop() == 0
    k.assert_clean()


def test_stop_while_api_query_runs(admin):
    """SIGTERM while a query job runs: the connection is closed at once
    and kagami exits cleanly once the job ends."""
    k = admin()
    port = k.admin_port
    send_traffic(k, 1, 0)
    wait_stored(port, 1)
    with BlockedStore(k.workdir / "kagami.db") as blocked:
        c = send_api(port)
        assert no_answer_yet(c)
        k.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert k.running()  # the job still runs
        blocked.release()
        assert k.wait() == 0
    c.close()
    k.assert_clean()
