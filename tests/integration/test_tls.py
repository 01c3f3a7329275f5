"""TLS on both sides (issue 14): https backends (Debian's nginx serving
TLS with certificates made at test time by `openssl`, see tlscerts.py),
each certificate failure as a shadow and as the master, mTLS, keep-alive
and session resumption, the TLS listener (curl and Python's ssl client),
SIGHUP certificate reload, start errors, and replay to an https target."""

import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from backends import free_port
from harness import Kagami, run_cli
from tlscerts import Pki

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() or shutil.which("openssl") is None,
    reason="needs nginx and openssl (scripts/deps.sh test)")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.good = p.leaf("good")
    p.good2 = p.leaf("good2")
    p.expired = p.leaf("expired", expired=True)
    p.wronghost = p.leaf("wronghost", names=["DNS:other.example"])
    p.stranger = p.leaf("stranger", ca="otherca")
    p.selfsigned = p.self_signed("self")
    p.client = p.leaf("client", names=["DNS:kagami-client"])
    return p


class Nginx:
    """One nginx serving TLS on one port per server block; each answers
    "hello <uri>" with the TLS facts of the connection in headers."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.servers = []
        self.proc = None

    def server(self, cert, key, extra=""):
        port = free_port()
        self.servers.append((port, cert, key, extra))
        return port

    def start(self):
        blocks = []
        for port, cert, key, extra in self.servers:
            blocks.append("""
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    %s
    location / {
      add_header X-Reused $ssl_session_reused always;
      add_header X-Conn $connection always;
      add_header X-Client-DN "$ssl_client_s_dn" always;
      return 200 "hello $request_uri\\n";
    }
  }""" % (port, cert, key, extra))
        d = self.dir
        (d / "nginx.conf").write_text("""
daemon off;
master_process off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  %(blocks)s
}
""" % {"d": d, "blocks": "\n".join(blocks)})
        self.proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf")],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(d / "stderr", "wb"))
        for port, *_ in self.servers:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    assert self.proc.poll() is None, (d / "stderr").read_text()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def nginx(tmp_path):
    n = Nginx(tmp_path / "nginx")
    yield n
    n.stop()


def lua(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "{ " + ", ".join(lua(x) for x in v) + " }"
    return "{ " + ", ".join("[%s] = %s" % (json.dumps(k), lua(x)) for k, x in v.items()) + " }"


@pytest.fixture
def start(tmp_path):
    """start(backends, listen=None, extra=None, name="k"): kagami with
    `backends` ({name: table}); the listen address is plain unless
    `listen` says otherwise. Stopped at teardown, which fails unless it
    exits 0 with no sanitizer report."""
    started = []

    def run(backends, listen=None, extra=None, name="k"):
        k = start_kagami(tmp_path, backends, listen, extra, name)
        started.append(k)
        return k

    yield run
    for k in started:
        assert k.stop() == 0, k.stderr()[-4000:]
        k.assert_clean()


def start_kagami(tmp_path, backends, listen, extra, name):
    work = tmp_path / name
    work.mkdir()
    port = free_port()
    table = {"listen": listen(port) if listen else "127.0.0.1:%d" % port,
             "backends": backends, "diff_log": str(work / "diffs.jsonl"),
             "store": False,
             # nginx numbers its connections: a difference by design.
             "ignore_headers": ["X-Conn", "X-Reused"]}
    table.update(extra or {})
    k = Kagami(work, "return " + lua(table) + "\n", port, work / "diffs.jsonl")
    return k.start()


def wait_stderr(k, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in k.stderr():
        assert time.monotonic() < deadline, "%r not in stderr:\n%s" % (text, k.stderr())
        time.sleep(0.05)
    return k.stderr()


def https(port, pki, **tls):
    t = {"ca": pki.ca}
    t.update(tls)
    return {"url": "https://localhost:%d" % port, "tls": t}


def master(b):
    return dict(b, master=True)


# --- https backends ----------------------------------------------------------


def test_https_master_and_shadow_keepalive(start, pki, nginx):
    """nginx over TLS as master and shadow: the client gets the master's
    answer, the shadow's is compared (equal), and both pools keep their
    connections across requests (one TLS connection, several requests)."""
    a = nginx.server(*pki.good)
    b = nginx.server(*pki.good)
    nginx.start()
    k = start({"production": master(https(a, pki)), "newdb": https(b, pki)})
    conns = set()
    for i in range(3):
        r = k.get("/x%d" % i)
        assert r.status == 200 and r.body == b"hello /x%d\n" % i
        conns.add(r.header("X-Conn"))
        e = k.wait_log_url("/x%d" % i)[0]
        assert e["backends"]["newdb"]["status"] == 200
        assert e["backends"]["newdb"]["equal"] is True
    assert len(conns) == 1  # the pooled TLS connection served every request


def test_session_resumption_on_refill(start, pki, nginx):
    """nginx closing after every response forces a new connection per
    request: every one after the first resumes the TLS session."""
    a = nginx.server(*pki.good, extra="keepalive_timeout 0;")
    nginx.start()
    k = start({"production": master(https(a, pki))})
    seen = [k.get("/r%d" % i).header("X-Reused") for i in range(4)]
    assert seen == [".", "r", "r", "r"]


class Silent:
    """Accepts TCP connections and never says a word (a TLS server stuck
    before its ServerHello)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            c.close()


def test_shadow_failures_are_named_and_client_unaffected(start, pki, nginx):
    """Each certificate problem, a protocol mismatch and a handshake that
    never ends, as shadows: the diff log names each reason, the client
    gets the master's answer as if nothing happened."""
    good = nginx.server(*pki.good)
    ports = {name: nginx.server(*getattr(pki, name))
             for name in ("expired", "wronghost", "stranger", "selfsigned")}
    v12 = nginx.server(*pki.good, extra="ssl_protocols TLSv1.2;")
    nginx.start()
    silent = Silent()
    try:
        backends = {"production": master(https(good, pki)),
                    "v13only": https(v12, pki, min_version="1.3"),
                    "silent": https(silent.port, pki)}
        backends.update({n: https(p, pki) for n, p in ports.items()})
        k = start(backends, extra={"backend_timeout": 0.5})
        t0 = time.monotonic()
        r = k.get("/page")
        assert r.status == 200 and r.body == b"hello /page\n"
        assert time.monotonic() - t0 < 0.4  # the silent shadow did not delay it
        e = k.wait_log_url("/page")[0]
        got = {n: b.get("error") for n, b in e["backends"].items()}
        assert got == {"production": None,
                       "expired": "tls: certificate has expired",
                       "wronghost": "tls: hostname mismatch",
                       "stranger": "tls: unknown CA",
                       "selfsigned": "tls: self-signed certificate",
                       "v13only": "tls: protocol version",
                       "silent": "tls: handshake timeout"}
        assert e["equal"] is False
    finally:
        silent.stop()


def test_shadow_left_alone_says_why(start, pki, nginx):
    """A shadow that fails every handshake is left alone after 5 in a row,
    and the line that says so names the reason."""
    good = nginx.server(*pki.good)
    bad = nginx.server(*pki.expired)
    nginx.start()
    k = start({"production": master(https(good, pki)), "expired": https(bad, pki)})
    for i in range(6):
        assert k.get("/d%d" % i).status == 200
    wait_stderr(k, "shadow expired failed to connect 5 times in a row "
                   "(last: tls: certificate has expired)")


def test_master_failures_502_504_and_rate_limited_log(start, pki, nginx):
    """A master with an expired certificate: 502 and one log line naming
    the reason, not one per request; a master stuck in its handshake:
    504."""
    bad = nginx.server(*pki.expired)
    nginx.start()
    k = start({"production": master(https(bad, pki))}, name="k1")
    for i in range(5):
        assert k.get("/m%d" % i).status == 502
    text = wait_stderr(k, "tls: certificate has expired")
    assert text.count("tls: certificate has expired") == 1
    assert "master production failed for GET /m0: tls: certificate has expired" in text

    silent = Silent()
    try:
        k = start({"production": master(https(silent.port, pki))},
                  extra={"backend_timeout": 0.3}, name="k2")
        assert k.get("/slow").status == 504
        wait_stderr(k, "tls: handshake timeout")
    finally:
        silent.stop()


def test_mtls_client_certificate(start, pki, nginx):
    """A backend that requires a client certificate gets kagami's."""
    port = nginx.server(*pki.good, extra="ssl_verify_client on; ssl_client_certificate %s;"
                        % pki.ca)
    nginx.start()
    cert, key = pki.client
    k = start({"production": master(https(port, pki, cert=cert, key=key)),
                         "nocert": https(port, pki)})
    r = k.get("/who")
    assert r.status == 200
    assert "CN=client" in r.header("X-Client-DN")
    e = k.wait_log_url("/who")[0]
    assert e["backends"]["nocert"]["status"] == 400  # nginx: no certificate sent


def test_verify_false_is_logged(start, pki, nginx):
    port = nginx.server(*pki.expired)
    nginx.start()
    k = start({"production": master(https(port, pki, verify=False))})
    assert k.get("/v").status == 200
    assert "backend production (https://localhost:%d): TLS certificate verification " \
           "is off (tls.verify = false)" % port in k.stderr()


# --- the TLS listener --------------------------------------------------------


def tls_listen(pki, cert=None, key=None):
    cert = cert or pki.good[0]
    key = key or pki.good[1]
    return lambda port: [{"address": "127.0.0.1:%d" % port,
                          "tls": {"cert": str(cert), "key": str(key)}}]


def tls_get(port, ca, path="/", alpn=None):
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      % path.encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data, s.selected_alpn_protocol(), s.getpeercert()


def peer_cn(cert):
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_tls_listener_curl_python_alpn(start, pki, nginx):
    port = nginx.server(*pki.good)
    nginx.start()
    k = start({"production": master(https(port, pki))}, listen=tls_listen(pki))
    out = subprocess.run(["curl", "-sS", "--cacert", pki.ca, "--http1.1",
                          "https://localhost:%d/curl" % k.port],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello /curl\n"
    data, alpn, cert = tls_get(k.port, pki.ca, "/py", alpn=["h2", "http/1.1"])
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"hello /py\n")
    assert alpn == "http/1.1"
    assert peer_cn(cert) == "good"
    # Plain HTTP to the TLS port is not a request: no response, closed.
    with socket.create_connection(("127.0.0.1", k.port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert not s.recv(100).startswith(b"HTTP/")
    assert k.running()


def test_sighup_reloads_certificate(start, tmp_path, pki, nginx):
    """The listener's pair is read again on SIGHUP: a good new pair is used
    by the next connection; a mismatched one is refused, the old kept."""
    port = nginx.server(*pki.good)
    nginx.start()
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki.good[0], cert)
    shutil.copy(pki.good[1], key)
    k = start({"production": master(https(port, pki))},
              listen=tls_listen(pki, cert, key))
    assert peer_cn(tls_get(k.port, pki.ca)[2]) == "good"
    shutil.copy(pki.good2[0], cert)
    shutil.copy(pki.good2[1], key)
    k.send_signal(signal.SIGHUP)
    wait_stderr(k, "reloaded")
    assert peer_cn(tls_get(k.port, pki.ca)[2]) == "good2"
    shutil.copy(pki.good[0], cert)  # key stays good2's: a mismatched pair
    k.send_signal(signal.SIGHUP)
    text = wait_stderr(k, "reload failed")
    assert "does not match certificate" in text
    assert peer_cn(tls_get(k.port, pki.ca)[2]) == "good2"


def test_start_errors_name_file_and_line(tmp_path, pki):
    cfg = tmp_path / "k.lua"

    def check(listen_tls):
        cfg.write_text('return {\n'
                       '  listen = { { address = "127.0.0.1:1",\n'
                       '    tls = %s } },\n'
                       '  backends = { p = { url = "https://localhost:2", master = true } },\n'
                       '}\n' % lua(listen_tls))
        return run_cli("check", cfg)

    p = check({"cert": str(tmp_path / "missing.pem"), "key": pki.good[1]})
    assert p.returncode == 1
    assert "k.lua:3: listen.tls.cert: cannot read %s: No such file or directory" % (
        tmp_path / "missing.pem") in p.stderr
    p = check({"cert": pki.good[0], "key": pki.good2[1]})
    assert p.returncode == 1
    assert "k.lua:3: listen.tls: key %s does not match certificate %s" % (
        pki.good2[1], pki.good[0]) in p.stderr
    p = check({"cert": pki.good[0]})
    assert p.returncode == 1 and "needs both cert and key" in p.stderr
    p = check({"cert": pki.good[0], "key": pki.good[1]})
    assert p.returncode == 0, p.stderr


# --- replay ------------------------------------------------------------------


def test_replay_to_https_target(tmp_path, pki, nginx):
    port = nginx.server(*pki.good)
    nginx.start()
    urls = tmp_path / "urls.txt"
    urls.write_text("/a\n/b\n/c\n")
    target = "https://localhost:%d" % port
    p = run_cli("replay", urls, "--target", target, "--ca", pki.ca, "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["statuses"] == {"200": 3} and s["errors"] == 0
    # Not trusted without --ca (the system store has no test CA) ...
    p = run_cli("replay", urls, "--target", target, "--json")
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["errors"] == 3
    # ... unless told not to verify.
    p = run_cli("replay", urls, "--target", target, "--insecure", "--json")
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["statuses"] == {"200": 3}


def test_admin_listener_over_tls(start, pki, nginx):
    """The admin listener takes the same `tls` table."""
    port = nginx.server(*pki.good)
    nginx.start()
    aport = free_port()
    k = start({"production": master(https(port, pki))},
              extra={"admin": {"address": "127.0.0.1:%d" % aport,
                               "tls": {"cert": pki.good[0], "key": pki.good[1]}}})
    assert "admin https://127.0.0.1:%d/" % aport in k.stderr()
    data, _, cert = tls_get(aport, pki.ca, "/healthz")
    assert data.startswith(b"HTTP/1.1 200 ")
    assert peer_cn(cert) == "good"
