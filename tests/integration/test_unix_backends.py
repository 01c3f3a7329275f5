"""Backends on Unix domain sockets (`url = "unix:/path/to/app.sock"`), as
app servers such as unicorn or puma often listen only there: the same
pools, keep-alive and error reporting as TCP backends."""

import re
import subprocess

from backends import Backend
from harness import kagami_bin, sanitizer_env


def unix_backend(make_backend, tmp_path, name, **kw):
    return make_backend(name, unix_path=str(tmp_path / (name + ".sock")), **kw)


def test_master_and_shadow_on_unix_sockets(make_backend, start_kagami,
                                           tmp_path):
    production = unix_backend(make_backend, tmp_path, "production")
    newdb = unix_backend(make_backend, tmp_path, "newdb", variant="newdb")
    k = start_kagami([production, newdb])
    with k.connect() as c:
        for i in range(5):
            resp = c.request("GET", "/text/3?i=%d" % i,
                             [("Host", "shop.example")])
            assert resp.status == 200
            assert resp.header("X-Backend") == "production"
            # compared: the shadow's answer is in and its connection back
            # in the pool (its arrival at the backend is not enough)
            k.wait_log(i + 1)
    # Requests went out one after another: each backend saw them over one
    # kept-alive connection from kagami's pool.
    assert production.connections == 1, production.connections
    assert newdb.connections == 1, newdb.connections
    # There is no host in the url: the client's Host is what arrives.
    assert {r.header("Host") for r in production.received()} == {"shop.example"}
    assert {r.header("Host") for r in newdb.received()} == {"shop.example"}
    entries = k.wait_log(5)
    assert all("error" not in e["backends"]["newdb"] for e in entries), entries


def test_a_missing_shadow_socket_is_its_error(make_backend, start_kagami,
                                              tmp_path):
    production = make_backend("production")
    newdb = Backend("newdb", fault="refuse",
                    unix_path=str(tmp_path / "absent.sock"))
    k = start_kagami([production, newdb])
    resp = k.request("GET", "/text/3")
    assert resp.status == 200
    e = k.wait_log(1)[0]
    assert e["backends"]["newdb"]["error"] == "no such socket", e


def test_a_missing_master_socket_gives_502(make_backend, start_kagami,
                                           tmp_path):
    path = tmp_path / "absent.sock"
    production = Backend("production", fault="refuse", unix_path=str(path))
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb])
    for _ in range(3):
        assert k.request("GET", "/text/3").status == 502
    k.stop()
    lines = [l for l in k.stderr().splitlines()
             if re.search(r"master production failed", l)]
    assert len(lines) == 1, lines
    assert "no such socket" in lines[0], lines


def test_check_accepts_unix_urls_and_names_bad_ones(tmp_path):
    cfg = tmp_path / "k.lua"
    cfg.write_text('return { backends = {\n'
                   '  production = { url = "unix:run/app.sock", master = true },\n'
                   '  newdb = { url = "http://127.0.0.1:9002" } } }\n')
    # The socket need not exist yet: the app server may start later.
    p = subprocess.run([str(kagami_bin()), "check", str(cfg)],
                       capture_output=True, text=True, env=sanitizer_env())
    assert p.returncode == 0, p.stderr
    for url, line, message in [
            ("unix:", 2, "expected unix:/path/to/socket, got an empty path"),
            ("unix:/" + "x" * 120, 2, "is 121 bytes, longer than a socket "
             "address holds (107)")]:
        cfg.write_text('return { backends = {\n'
                       '  production = { url = "%s", master = true },\n'
                       '  newdb = { url = "http://127.0.0.1:9002" } } }\n' % url)
        p = subprocess.run([str(kagami_bin()), "check", str(cfg)],
                           capture_output=True, text=True, env=sanitizer_env())
        assert p.returncode == 1
        assert "k.lua:%d: backends.production.url: " % line in p.stderr, p.stderr
        assert message in p.stderr, p.stderr
