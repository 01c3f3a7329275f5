"""Issue 6 point 6: SIGHUP re-reads the config. A valid new config applies
to requests that start after it, without dropping any request or
connection in flight; an invalid one is logged and the old config stays."""

import signal
import time

from harness import render_config
from test_lifecycle import in_background, wait_stderr


def rewrite(k, backends, options=None):
    """Writes a new config for the running kagami k (same listen, log)."""
    k.config.write_text(render_config(k.listen, backends, "production",
                                      k.diff_log, options))


def test_reload_applies_to_new_requests_only(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    other = make_backend("newdb", variant="newdb")  # same name, new address
    k = start_kagami([production, newdb])

    # A slow request and an open keep-alive connection span the reload.
    conn = k.connect()
    assert conn.request("GET", "/text/1").status == 200
    t, result = in_background(lambda: k.get("/slow/1500"))
    production.wait_for_requests(1, "/slow/1500")

    rewrite(k, [production, other])
    k.send_signal(signal.SIGHUP)
    wait_stderr(k, ["reloaded"])
    time.sleep(0.3)  # the workers swap on their own loops

    t.join(10)
    assert "error" not in result, result.get("error")
    assert result["value"].status == 200
    assert result["value"].body == b"slow 1500\n"
    # The connection opened before the reload still works ...
    assert conn.request("GET", "/text/2").status == 200
    conn.close()
    # ... and new requests go to the new shadow address.
    assert k.get("/text/3").status == 200
    k.wait_log_url("/text/3")
    assert other.received("/text/3"), "the reloaded shadow got nothing"
    assert not newdb.received("/text/3")
    # The request that began before the reload went to the old shadow.
    assert newdb.received("/slow/1500")


def test_invalid_reload_keeps_the_running_config(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    k.config.write_text("return { backends = { production = { url = \"localhost\" } } }\n")
    k.send_signal(signal.SIGHUP)
    text = wait_stderr(k, ["reload failed"])
    assert "reload failed, keeping the running config" in text
    assert "kagami.lua:1: backends.production.url: expected http://host:port" in text
    assert k.get("/text/4").status == 200
    k.wait_log_url("/text/4")  # still shadowed as before
    assert newdb.received("/text/4")


def test_reload_refuses_what_needs_a_restart(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    rewrite(k, [production, newdb], {"workers": 2})
    k.send_signal(signal.SIGHUP)
    text = wait_stderr(k, ["reload refused"])
    assert "workers cannot change without a restart" in text
    assert k.get("/text/5").status == 200


def test_reload_changes_sampling(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    assert k.get("/text/6").status == 200
    k.wait_log_url("/text/6")
    rewrite(k, [production, newdb], {"sample": 0})
    k.send_signal(signal.SIGHUP)
    wait_stderr(k, ["reloaded"])
    time.sleep(0.3)
    for i in range(5):
        assert k.get("/text/%d" % (10 + i)).status == 200
    assert production.received("/text/14")
    assert not any(newdb.received("/text/%d" % (10 + i)) for i in range(5))


def test_sighup_reopens_the_diff_log(make_backend, start_kagami):
    """logrotate's way: rename the diff log, send SIGHUP; kagami writes to a
    new file at the configured path, and the renamed one keeps its lines."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    assert k.get("/text/20").status == 200
    k.wait_log_url("/text/20")
    rotated = k.diff_log.with_name(k.diff_log.name + ".1")
    k.diff_log.rename(rotated)
    k.send_signal(signal.SIGHUP)
    wait_stderr(k, ["reloaded"])
    assert k.get("/text/21").status == 200
    k.wait_log_url("/text/21")  # polls the configured path: the new file
    new_urls = [e["url"] for e in k.log_entries()]
    assert new_urls == ["/text/21"]
    old_text = rotated.read_text()
    assert '"url":"/text/20"' in old_text and "/text/21" not in old_text
