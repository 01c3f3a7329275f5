"""Issue 12 point 1: what learned noise hides is visible and exportable.
A real kagami learns noise from a secondary backend on /precise/<kind>
(backends.precise_reply: noise right next to a real field); then
/api/noise, `kagami noise` (text, json) and `kagami noise --export` show
it, and the exported rules, pasted into a config run without learning,
hide exactly the locations learning hid: a real change next to them is
still reported, and locations no rule can name exactly (a text line, one
field of a repeated header) are left to be reported."""

import json
import time

import pytest

import backends
from backends import free_port
from harness import run_cli
from test_admin import admin_get, auth
from test_noise import MIN_PAIRS, NOISE, PRECISE, run

TOKEN = "n0ise-t0ken"
PAIRS = MIN_PAIRS + 2
# What --export turns each kind's noise into: (rule key, values), or None
# when no rule hides exactly that location (it stays a comment).
EXPORTED = {
    "array": ("ignore", ["$.rows[0].n"]),
    "object": ("ignore", ["$.a"]),
    "ids": ("ignore", ["$.rows[0].id", "$.rows[1].id", "$.rows[2].id"]),
    "html": ("ignore_xpath", ["/html/body/p[1]/text()"]),
    "text": None,
    "headers": None,
}


def start_learning(make_backend, start_kagami, token=None, noise=NOISE, **extra):
    """production (master), newdb (the shadow), replica (secondary) and a
    kagami learning noise, with an admin listener (and `extra` options)."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    replica = make_backend("replica")
    port = free_port()
    options = {"backends": {"production": {"url": production.url, "master": True},
                            "newdb": {"url": newdb.url},
                            "replica": {"url": replica.url, "secondary": True}},
               "admin": "127.0.0.1:%d" % port}
    if noise is not None:
        options["noise"] = noise
    if token:
        options["admin_token"] = token
    options.update(extra)
    k = start_kagami([production, newdb, replica], options=options)
    k.admin_port = port
    return k


def learn(k, kind, n=PAIRS):
    run(k, ["/precise/%s?i=%d" % (kind, i) for i in range(n)])


def api_noise(k, query="", headers=None):
    r = admin_get(k.admin_port, "/api/noise" + query, headers)
    assert r.status == 200, r.body
    assert r.header("Content-Type") == "application/json"
    return json.loads(r.body)


def test_api_noise_shows_each_location_with_its_evidence(make_backend, start_kagami):
    # Learned noise is in memory: shown without a results store too.
    k = start_learning(make_backend, start_kagami, store=False)
    before = time.time()
    learn(k, "array")
    learn(k, "object", n=3)  # under min_pairs: counted, not hidden
    after = time.time()
    j = api_noise(k)
    assert j["learning"] is True and j["full"] is False
    assert j["threshold"] == 0.2 and j["min_pairs"] == MIN_PAIRS
    assert [e["endpoint"] for e in j["endpoints"]] == [
        "GET /precise/array", "GET /precise/object"]
    arr, obj = j["endpoints"]
    assert arr["pairs"] == PAIRS and arr["suppressed"] == 1
    assert before - 1 <= arr["first_seen"] <= arr["last_seen"] <= after + 1
    [loc] = arr["locations"]
    assert loc["location"] == "$.rows[0].n"
    assert (loc["differed"], loc["pairs"], loc["suppressed"]) == (PAIRS, PAIRS, True)
    assert arr["first_seen"] <= loc["first_seen"] <= loc["last_seen"] <= arr["last_seen"]
    assert obj["pairs"] == 3 and obj["suppressed"] == 0
    assert [(x["location"], x["differed"], x["suppressed"])
            for x in obj["locations"]] == [("$.a", 3, False)]
    # The endpoint filter is a rule's glob: with a method the whole name,
    # without one the path.
    assert [e["endpoint"] for e in api_noise(k, "?endpoint=GET%20/precise/a*")[
        "endpoints"]] == ["GET /precise/array"]
    assert [e["endpoint"] for e in api_noise(k, "?endpoint=/precise/o*")[
        "endpoints"]] == ["GET /precise/object"]
    assert api_noise(k, "?endpoint=POST%20*")["endpoints"] == []


def test_api_noise_needs_the_token_and_says_when_not_learning(
        make_backend, start_kagami):
    k = start_learning(make_backend, start_kagami, token=TOKEN, noise=None)
    r = admin_get(k.admin_port, "/api/noise")
    assert r.status == 401
    r = admin_get(k.admin_port, "/api/noise", auth("wrong"))
    assert r.status == 401
    j = api_noise(k, headers=auth(TOKEN))
    assert j["learning"] is False and j["endpoints"] == []


def test_kagami_noise_prints_a_table_json_and_rules(make_backend, start_kagami):
    k = start_learning(make_backend, start_kagami, token=TOKEN)
    learn(k, "array")
    learn(k, "text")
    p = run_cli("noise", "--config", k.config)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "min_pairs %d" % MIN_PAIRS in lines[0] and "2 endpoints" in lines[0]
    block = p.stdout.split("GET /precise/array:")[1].split("GET /precise/text")[0]
    assert "%d noise pairs" % PAIRS in block and "1 suppressed" in block
    [row] = [x for x in block.splitlines() if "$.rows[0].n" in x]
    assert row.split()[:2] == ["yes", "%d/%d" % (PAIRS, PAIRS)], row
    assert "line 1: <td>#</td> -> <td>#</td>" in p.stdout

    p = run_cli("noise", "--admin", "http://127.0.0.1:%d" % k.admin_port,
                "--token", TOKEN, "--format", "json", "--endpoint", "GET /precise/a*")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert [e["endpoint"] for e in j["endpoints"]] == ["GET /precise/array"]
    assert j == api_noise(k, "?endpoint=GET%20/precise/a*", auth(TOKEN))

    p = run_cli("noise", "--config", k.config, "--export")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert 'rules = {\n  { endpoint = "GET /precise/array",' in out, out
    assert '    ignore = {\n      "$.rows[0].n",  -- differed in %d of %d pairs\n' % (
        PAIRS, PAIRS) in out, out
    # The text line has no exact rule: a comment, never code.
    text = [x for x in out.splitlines() if "line 1:" in x]
    assert text and all(x.lstrip().startswith("--") for x in text), out
    assert not [x for x in out.splitlines()
                if "/precise/text" in x and not x.lstrip().startswith("--")], out


def test_kagami_noise_errors_say_what_to_do(make_backend, start_kagami, tmp_path):
    k = start_learning(make_backend, start_kagami, token=TOKEN)
    p = run_cli("noise", "--admin", str(k.admin_port))  # a port alone: loopback
    assert p.returncode == 1 and "needs a token" in p.stderr, p.stderr
    p = run_cli("noise", "--admin", "127.0.0.1:%d" % k.admin_port, "--token", "bad")
    assert p.returncode == 1 and "refused the token" in p.stderr, p.stderr
    # Learning, but no pair yet: nothing to show.
    p = run_cli("noise", "--config", k.config)
    assert p.returncode == 2 and "no noise pair seen yet" in p.stderr, p.stderr
    p = run_cli("noise", "--admin", "http://127.0.0.1:%d/" % free_port())
    assert p.returncode == 1 and "not reachable" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    bare = tmp_path / "bare.lua"
    bare.write_text('return { backends = { production = { url = '
                    '"http://127.0.0.1:9", master = true } } }\n')
    p = run_cli("noise", "--config", bare)
    assert p.returncode == 1 and "has no admin listener" in p.stderr, p.stderr
    p = run_cli("noise")
    assert p.returncode == 1 and "--config" in p.stderr, p.stderr


def test_kagami_noise_says_when_kagami_does_not_learn(make_backend, start_kagami):
    k = start_learning(make_backend, start_kagami, noise=None)
    p = run_cli("noise", "--config", k.config)
    assert p.returncode == 2, p.stderr
    assert "does not learn noise" in p.stderr and "learn = true" in p.stderr
    assert p.stdout == ""
    # Scripts get the API's answer all the same.
    p = run_cli("noise", "--config", k.config, "--format", "json")
    assert p.returncode == 2, p.stderr
    assert json.loads(p.stdout) == {"learning": False, "threshold": 0.2, "min_pairs": 10,
                                    "full": False, "endpoints": []}


@pytest.mark.parametrize("kind", backends.PRECISE_KINDS)
def test_exported_rules_hide_exactly_what_learning_hid(
        make_backend, start_kagami, tmp_path, kind):
    noise, real = PRECISE[kind]
    k = start_learning(make_backend, start_kagami)
    learn(k, kind)
    p = run_cli("noise", "--config", k.config, "--export")
    fragment = p.stdout
    if EXPORTED[kind] is None:
        # Nothing of it is a rule: said so (exit 2), listed as comments.
        assert p.returncode == 2, p.stderr
        assert "no suppressed location has a rule" in p.stderr, p.stderr
        assert all(loc in fragment for loc in noise), fragment
        body = "\n".join(x for x in fragment.splitlines()
                         if not x.lstrip().startswith("--"))
        assert body == "rules = {\n},", fragment
    else:
        assert p.returncode == 0, p.stderr
        key, values = EXPORTED[kind]
        assert "    %s = {\n" % key in fragment, fragment
        assert all('"%s"' % v in fragment for v in values), fragment

    # Pasted into a config that does not learn: `kagami check` accepts it.
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    frozen = start_kagami([production, newdb], hooks=fragment,
                          options={"noise": {"learn": False}})
    assert run_cli("check", frozen.config).returncode == 0
    [e] = run(frozen, ["/precise/%s?i=check" % kind])
    if EXPORTED[kind] is None:
        # No rule, no learning: the noise is reported (a false alarm, never
        # a hidden change).
        assert e["equal"] is False and e["suppressed"] == [], json.dumps(e)
        return
    assert e["equal"] is True, json.dumps(e)
    assert set(e["suppressed"]) == set(EXPORTED[kind][1]), json.dumps(e)
    # A real change right next to the frozen noise is still reported.
    [e] = run(frozen, ["/precise/%s?real=1" % kind])
    assert e["equal"] is False, json.dumps(e)
    got = [(d["where"], d["master"], d["shadow"]) for d in e["differences"]] + \
        [("header:" + d["name"], d["master"], d["shadow"])
         for d in e["header_differences"]]
    assert got == real, json.dumps(e)
