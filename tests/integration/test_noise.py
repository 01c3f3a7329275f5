"""Issue 3 point 6: learned noise, black box. With noise = { learn = true },
kagami learns per endpoint which paths differ between two answers that
should agree: master and a `secondary` backend (Diffy's way), or the shadow
asked twice (`repeat`). After `min_pairs` pairs, a location that differed
in at least `threshold` of them is suppressed and listed in `suppressed`; a
real change in the same response is still reported. Locations are never
generalised: noise in one array element, sibling element, line or repeated
header field never hides a change in another (issue 12).

The production and replica backends serve the default variant, newdb the
"newdb" variant: see backends.py (api_doc, page_body, form_text)."""

import json

import pytest

import backends

MIN_PAIRS = 10
API_NOISE_PATHS = {"$.meta.ts", "$.meta.request_id", "$.items[0].updated_at",
                   "$.items[1].updated_at"}
API_NOISE = API_NOISE_PATHS  # suppressed where it was seen, nowhere else
NOISE = {"learn": True, "threshold": 0.2, "min_pairs": MIN_PAIRS}


def with_secondary(make_backend, start_kagami, noise=NOISE):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    replica = make_backend("replica")  # the master's version, again
    table = {"production": {"url": production.url, "master": True},
             "newdb": {"url": newdb.url},
             "replica": {"url": replica.url, "secondary": True}}
    options = {"backends": table}
    if noise is not None:
        options["noise"] = noise
    k = start_kagami([production, newdb, replica], options=options)
    return production, newdb, replica, k


def wheres(e):
    return {d["where"] for d in e["differences"]}


def run(k, urls):
    """Requests each url in turn on one connection (200 expected) and
    returns their records, in the same order."""
    with k.connect() as c:
        for url in urls:
            resp = c.request("GET", url)
            assert resp.status == 200, (url, resp.status)
    entries = k.wait_log(len(urls), lambda e: e["url"] in urls)
    by_url = {e["url"]: e for e in entries}
    return [by_url[u] for u in urls]


def learn_then_check(k, learn_urls, check_urls, noise_paths,
                     noise_patterns):
    """Sends MIN_PAIRS requests to learn from and waits until all are
    compared; then sends `check_urls`. Before any pair the noise is
    reported; once MIN_PAIRS pairs are in, it is suppressed and the shadow
    is equal. Returns the records of check_urls."""
    assert len(learn_urls) == MIN_PAIRS
    first = run(k, learn_urls)[0]
    assert wheres(first) == noise_paths, first
    assert first["suppressed"] == [] and first["equal"] is False
    records = run(k, check_urls)
    for e in records:
        assert e["differences"] == [], json.dumps(e)
        assert e["equal"] is True, json.dumps(e)
        assert set(e["suppressed"]) == noise_patterns, json.dumps(e)
    return records


def test_secondary_noise_is_learned_and_real_changes_still_show(
        make_backend, start_kagami):
    production, newdb, replica, k = with_secondary(make_backend, start_kagami)
    n = MIN_PAIRS + 2
    records = learn_then_check(
        k, ["/api/feed/%d" % i for i in range(MIN_PAIRS)],
        ["/api/feed/%d" % i for i in range(MIN_PAIRS, n)],
        API_NOISE_PATHS, API_NOISE)
    e = records[-1]
    assert e["endpoint"] == "GET /api/feed/:id"
    # The secondary got every request; it is a noise partner, not a shadow.
    assert len(replica.received()) == n
    assert e["backends"]["replica"]["role"] == "secondary"
    assert "equal" not in e["backends"]["replica"]

    # Noise and a real change in one response: only the change is reported.
    [e] = run(k, ["/api/feed/99?real=1"])
    assert e["equal"] is False
    assert [(d["backend"], d["where"], d["master"], d["shadow"])
            for d in e["differences"]] == [("newdb", "$.price", "120", "125")]
    assert set(e["suppressed"]) == API_NOISE

    # Learning is per endpoint: another endpoint has learned nothing yet.
    [e] = run(k, ["/api/other/1"])
    assert wheres(e) == API_NOISE_PATHS
    assert e["suppressed"] == []


def test_secondary_learns_html_noise_by_xpath(make_backend, start_kagami):
    _, _, _, k = with_secondary(make_backend, start_kagami)
    learn_then_check(k, ["/page?i=%d" % i for i in range(MIN_PAIRS)],
                     ["/page?i=check"], {backends.PAGE_TOKEN_XPATH},
                     {backends.PAGE_TOKEN_XPATH})
    [e] = run(k, ["/page?real=1"])
    assert e["equal"] is False
    assert [(d["where"], d["master"], d["shadow"]) for d in
            e["differences"]] == [(backends.PAGE_PRICE_XPATH, "Price: 120",
                                   "Price: 125")]
    assert e["suppressed"] == [backends.PAGE_TOKEN_XPATH]


def test_secondary_learns_text_line_noise_without_hiding_a_nearby_change(
        make_backend, start_kagami):
    # Line 2 has a numeric token that changes on every response; line 4 is
    # the real field, two lines below (inside the same diff hunk).
    _, _, _, k = with_secondary(make_backend, start_kagami)
    run(k, ["/form.txt?digits=1&i=%d" % i for i in range(MIN_PAIRS)])
    [e] = run(k, ["/form.txt?digits=1&i=check"])
    assert e["equal"] is True, json.dumps(e)
    assert e["differences"] == [] and len(e["suppressed"]) == 1, \
        json.dumps(e)
    [e] = run(k, ["/form.txt?digits=1&real=1"])
    assert e["equal"] is False, json.dumps(e)
    assert any("total: 120" in (d["master"] or "") and
               "total: 125" in (d["shadow"] or "")
               for d in e["differences"]), json.dumps(e)


def test_secondary_gets_nothing_unless_noise_is_learned(make_backend,
                                                        start_kagami):
    _, newdb, replica, k = with_secondary(make_backend, start_kagami,
                                          noise=None)
    [e] = run(k, ["/api/feed/1"])
    assert set(e["backends"]) == {"production", "newdb"}
    assert wheres(e) == API_NOISE_PATHS
    assert len(newdb.received()) == 1
    assert replica.received() == []


def test_repeat_to_the_shadow_learns_noise_without_a_secondary(
        make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    noise = dict(NOISE, shadow_twice=1.0)
    k = start_kagami([production, newdb], options={"noise": noise})
    n = MIN_PAIRS + 1
    records = learn_then_check(
        k, ["/api/feed/%d" % i for i in range(MIN_PAIRS)],
        ["/api/feed/%d" % MIN_PAIRS], API_NOISE_PATHS, API_NOISE)
    # Every request went to the shadow twice, and once to the master.
    assert len(newdb.received()) == 2 * n
    assert len(production.received()) == n
    roles = [b.get("role") for name, b in records[-1]["backends"].items()
             if name not in ("production", "newdb")]
    assert roles == ["repeat"], records[-1]["backends"]

    [e] = run(k, ["/api/feed/99?real=1"])
    assert e["equal"] is False
    assert [(d["where"], d["master"], d["shadow"]) for d in
            e["differences"]] == [("$.price", "120", "125")]
    assert set(e["suppressed"]) == API_NOISE


def test_the_repeat_waits_for_the_shadows_answer(make_backend, start_kagami):
    """The second copy reaches the shadow after the first one's answer, not
    with it: sent together they were served in the same millisecond, and a
    millisecond timestamp, which differs between master and shadow, was
    rarely learned as noise."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb", delay=0.3)
    k = start_kagami([production, newdb],
                     options={"noise": dict(NOISE, shadow_twice=1.0)})
    [e] = run(k, ["/api/feed/7"])
    first, repeat = sorted(newdb.received(), key=lambda r: r.at)
    assert repeat.at - first.at >= 0.3, (first.at, repeat.at)
    roles = sorted(b.get("role", "") for b in e["backends"].values())
    assert roles == ["", "", "repeat"], e["backends"]


def test_noise_below_min_pairs_is_not_suppressed(make_backend, start_kagami):
    _, _, _, k = with_secondary(make_backend, start_kagami,
                                noise=dict(NOISE, min_pairs=50))
    records = run(k, ["/api/feed/%d" % i for i in range(MIN_PAIRS)])
    for e in records:
        assert wheres(e) == API_NOISE_PATHS, e
        assert e["suppressed"] == [] and e["equal"] is False


# Where the noise is, and where the real field is, for /precise/<kind>
# (backends.precise_reply): the real field shares the noise's array,
# object, element list, line shape or header name.
PRECISE = {
    "array": ({"$.rows[0].n"}, [("$.rows[1].n", "1", "2")]),
    "object": ({"$.a"}, [("$.b", "1", "2")]),
    "ids": ({"$.rows[0].id", "$.rows[1].id", "$.rows[2].id"},
            [("$.rows[1].v", "1", "2")]),
    "html": ({"/html/body/p[1]/text()"}, [("/html/body/p[2]/text()", "v1", "v2")]),
    "text": ({"line 1: <td>#</td> -> <td>#</td>"}, [("line 2", "<td>6</td>", "<td>7</td>")]),
    "headers": ({"header:x-item[1]"}, [("header:x-item[2]", "v1", "v2")]),
}
PRECISE_PAIRS = 50


@pytest.mark.parametrize("kind", backends.PRECISE_KINDS)
def test_learned_noise_never_hides_a_real_change_next_to_it(
        make_backend, start_kagami, kind):
    noise, real = PRECISE[kind]
    _, _, _, k = with_secondary(make_backend, start_kagami)
    learn = ["/precise/%s?i=%d" % (kind, i) for i in range(PRECISE_PAIRS)]
    first = run(k, learn)[0]
    assert first["equal"] is False and first["suppressed"] == [], json.dumps(first)
    # Noise only: equal, with exactly the noisy locations suppressed.
    [e] = run(k, ["/precise/%s?i=check" % kind])
    assert e["equal"] is True, json.dumps(e)
    assert set(e["suppressed"]) == noise, json.dumps(e)
    # Noise and a real change: the change is reported at its own location.
    [e] = run(k, ["/precise/%s?real=1" % kind])
    assert e["equal"] is False, json.dumps(e)
    got = [(d["where"], d["master"], d["shadow"]) for d in e["differences"]] + \
        [("header:" + d["name"], d["master"], d["shadow"]) for d in e["header_differences"]]
    assert got == real, json.dumps(e)
    assert set(e["suppressed"]) == noise, json.dumps(e)
    # What was learned is logged once, with the endpoint and the locations.
    learned = [line for line in k.stderr().splitlines() if "noise learned for" in line]
    assert len(learned) == 1, learned
    assert "GET /precise/%s after %d pairs" % (kind, MIN_PAIRS) in learned[0], learned
    assert all(loc in learned[0] for loc in noise), learned


def test_more_noisy_locations_than_a_result_stores(make_backend, start_kagami):
    """150 noisy ids: more than the 100 differences a result stores. Every
    one is learned (noise pairs store what noise can learn), and noise is
    taken out before the cap, so noise-only answers are equal and the one
    real change in row 120 is still reported."""
    _, _, _, k = with_secondary(make_backend, start_kagami)
    run(k, ["/precise/many?i=%d" % i for i in range(MIN_PAIRS)])
    [e] = run(k, ["/precise/many?i=check"])
    assert e["equal"] is True and e["differences"] == [], json.dumps(e)[:500]
    assert len(e["suppressed"]) == backends.MANY_ROWS
    [e] = run(k, ["/precise/many?real=1"])
    assert e["equal"] is False
    assert [(d["where"], d["master"], d["shadow"]) for d in e["differences"]] == \
        [("$.rows[120].v", "1", "2")], json.dumps(e)[:500]
