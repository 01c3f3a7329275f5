"""Issue point 4: backends are selected per request (not per connection):
shadow_methods, then sample, then the select_backends(req) hook. The master
always gets the request."""

import backends
from checks import only_request


def test_post_is_not_shadowed_by_default(proxy):
    k = proxy.kagami
    with k.connect() as c:
        assert c.request("POST", "/echo", body=b"write").status == 200
        # A shadowed GET on the same connection: its diff-log line and its
        # arrival at the shadow mark the point by which the POST would have
        # been there too.
        assert c.request("GET", "/text/1?marker").status == 200
    k.wait_log_url("/text/1?marker")
    proxy.newdb.wait_for_requests(1, "/text/1")
    assert only_request(proxy.production, "/echo").body == b"write"
    assert proxy.newdb.received("/echo") == []
    assert [e for e in k.log_entries() if e["url"] == "/echo"] == []


def test_head_is_shadowed_by_default(proxy):
    resp = proxy.kagami.request("HEAD", "/text/4")
    assert resp.status == 200 and resp.body == b""
    rec = proxy.newdb.wait_for_requests(1, "/text/4")[0]
    assert rec.method == "HEAD"
    entry = proxy.kagami.wait_log_url("/text/4")[0]
    assert entry["method"] == "HEAD"


def test_configured_shadow_methods(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb],
                     options={"shadow_methods": ["POST", "DELETE"]})
    with k.connect() as c:
        c.request("POST", "/echo", body=b"copy me")
        c.request("DELETE", "/echo?d")
        c.request("GET", "/text/2")
        c.request("POST", "/text/1?marker", body=b"")
    k.wait_log_url("/text/1?marker")
    assert newdb.wait_for_requests(1, "/echo")[0].body == b"copy me"
    assert [r.method for r in newdb.received("/echo")] == ["POST", "DELETE"]
    assert newdb.received("/text/2") == []
    assert len(production.received()) == 4


def test_sample_zero_shadows_nothing(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb], options={"sample": 0})
    with k.connect() as c:
        for i in range(10):
            assert c.request("GET", "/text/3").body == backends.text_body(3)
    assert k.stop() == 0  # flushes the diff log
    assert len(production.received()) == 10
    assert newdb.received() == []
    assert k.log_entries() == []


def test_sample_is_decided_per_request_not_per_connection(make_backend,
                                                          start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb], options={"sample": 0.5})
    n = 100
    with k.connect() as c:
        for i in range(n):
            assert c.request("GET", "/text/1?i=%d" % i).status == 200
    assert k.stop() == 0
    shadowed = len(newdb.received())
    # One connection, so a per-connection choice would give 0 or 100.
    # Binomial(100, 0.5) falls outside 20..80 with probability < 1e-9.
    assert 20 <= shadowed <= 80, shadowed
    assert len(k.log_entries()) == shadowed
    assert len(production.received()) == n


SELECT_HOOK = """
  select_backends = function(req)
    if req.path == "/only-master" then return { "production" } end
    if req.path == "/to-other" then return { "other" } end
    if req.path == "/no-master" then return { "newdb" } end
    if req.path == "/empty" then return {} end
    return nil
  end,
"""


def test_select_backends_routes_per_request(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    other = make_backend("other")
    k = start_kagami([production, newdb, other], hooks=SELECT_HOOK)
    paths = ["/only-master", "/to-other", "/no-master", "/empty", "/default"]
    with k.connect() as c:  # one connection: the choice is per request
        for p in paths:
            resp = c.request("GET", p)
            assert resp.status == 404  # the backends have no such route
            assert resp.header("X-Backend") == "production"
    by_url = {e["url"]: e for e in k.wait_log(3)}
    assert set(by_url) == {"/to-other", "/no-master", "/default"}
    assert set(by_url["/to-other"]["backends"]) == {"production", "other"}
    assert set(by_url["/no-master"]["backends"]) == {"production", "newdb"}
    assert set(by_url["/default"]["backends"]) == {"production", "newdb",
                                                   "other"}
    assert [r.path for r in production.received()] == paths
    assert sorted(r.path for r in newdb.received()) == ["/default",
                                                       "/no-master"]
    assert sorted(r.path for r in other.received()) == ["/default",
                                                       "/to-other"]
    assert k.stop() == 0
    assert len(k.log_entries()) == 3


def test_select_backends_sees_method_path_url(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    hook = """
  select_backends = function(req)
    if req.method == "GET" and req.path == "/text/3"
       and req.url == "/text/3?q=1" then
      return { "production", "newdb" }
    end
    return { "production" }
  end,
"""
    k = start_kagami([production, newdb], hooks=hook)
    for target in ("/text/3?q=2", "/text/3?q=1", "/text/3"):
        assert k.get(target).body == backends.text_body(3)
    assert k.stop() == 0
    assert [e["url"] for e in k.log_entries()] == ["/text/3?q=1"]
    assert [r.target for r in newdb.received()] == ["/text/3?q=1"]


def test_shadow_methods_apply_before_the_hook(make_backend, start_kagami):
    """The issue orders the rules shadow_methods -> sample -> hook: a POST
    (not in the default shadow_methods) is not shadowed even when the hook
    names a shadow."""
    production = make_backend("production")
    newdb = make_backend("newdb")
    hook = """
  select_backends = function(req) return { "production", "newdb" } end,
"""
    k = start_kagami([production, newdb], hooks=hook)
    assert k.request("POST", "/echo", body=b"x").status == 200
    assert k.get("/text/1").status == 200
    assert k.stop() == 0
    assert [r.path for r in newdb.received()] == ["/text/1"]


def test_select_backends_unknown_name_is_skipped(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    hook = """
  select_backends = function(req) return { "nosuchbackend", "newdb" } end,
"""
    k = start_kagami([production, newdb], hooks=hook)
    assert k.get("/text/2").body == backends.text_body(2)
    entry = k.wait_log_url("/text/2")[0]
    assert set(entry["backends"]) == {"production", "newdb"}
    assert "nosuchbackend" in k.stderr()
