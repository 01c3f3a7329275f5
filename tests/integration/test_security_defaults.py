"""Issue 6 point 8 (part): kagami runs as an unprivileged user, and unsafe
methods never reach a shadow with the default config.

When the tests run as root, kagami is started as `nobody` through
`setpriv --reuid=nobody --regid=nogroup --clear-groups`, on a port above
1024, from a directory nobody cannot write (binary and config there), with
only its output directory writable by it.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import rawhttp
from backends import free_port
from checks import only_request
from harness import (STOP_TIMEOUT, Kagami, kagami_bin, render_config,
                     sanitizer_env, sanitizer_reports)

UNSAFE = ["POST", "PUT", "DELETE", "PATCH"]


def proc_ids(pid):
    """(real, effective, saved, fs) uids and gids of a process."""
    status = Path("/proc/%d/status" % pid).read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines()
                  if ":" in line)
    return ([int(x) for x in fields["Uid"].split()],
            [int(x) for x in fields["Gid"].split()],
            fields.get("Groups", "").split())


class UnprivilegedKagami(Kagami):
    """`kagami run` under a command prefix (e.g. setpriv), with the binary
    copied next to the config."""

    def __init__(self, workdir, config_text, port, diff_log, prefix, binary):
        super().__init__(workdir, config_text, port, diff_log)
        self.prefix = prefix
        self.binary = binary

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*self.prefix, str(self.binary), "run", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
            env=sanitizer_env(), cwd=self.workdir)
        self.wait_ready()
        return self


@pytest.fixture
def nobody_dir():
    """A directory under /tmp that nobody can read but not write, with an
    `out` subdirectory that nobody owns."""
    if os.geteuid() != 0:
        pytest.skip("not root: every other test already runs kagami "
                    "unprivileged")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    user = pwd.getpwnam("nobody")
    d = Path(tempfile.mkdtemp(prefix="kagami-nobody-", dir="/tmp"))
    try:
        d.chmod(0o755)
        out = d / "out"
        out.mkdir()
        os.chown(out, user.pw_uid, user.pw_gid)
        yield d, user
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_runs_as_nobody(make_backend, nobody_dir):
    d, user = nobody_dir
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    binary = d / "kagami"
    shutil.copy(kagami_bin(), binary)
    binary.chmod(0o755)
    log = d / "out" / "diffs.jsonl"
    port = free_port()
    assert port > 1024
    text = render_config("127.0.0.1:%d" % port, [production, newdb],
                         "production", None,
                         {"diff_log": str(log),
                          "store": str(d / "out" / "kagami.db")})
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup",
              "--clear-groups", "--"]
    k = UnprivilegedKagami(d, text, port, log, prefix, binary)
    (d / "kagami.lua").chmod(0o644)
    try:
        k.start()
        uids, gids, groups = proc_ids(k.proc.pid)
        assert uids == [user.pw_uid] * 4, uids
        assert gids == [user.pw_gid] * 4, gids
        assert groups == [], groups
        # The same user cannot write where kagami's binary and config are.
        probe = subprocess.run([*prefix, "touch", str(d / "x")],
                               capture_output=True)
        assert probe.returncode != 0 and not (d / "x").exists()
        resp = k.get("/diff")
        assert resp.status == 200
        newdb.wait_for_requests(1, "/diff")
        only_request(newdb, "/diff")
        entry = k.wait_log_url("/diff")[0]
        assert entry["equal"] is False
        assert log.stat().st_uid == user.pw_uid
        assert k.stop() == 0
        k.assert_clean()
    finally:
        if k.proc is not None and k.proc.poll() is None:
            k.proc.send_signal(signal.SIGKILL)
            k.proc.wait(STOP_TIMEOUT)


def test_unsafe_methods_never_shadowed_by_default(make_backend,
                                                  start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    # Even a select_backends hook that asks for every backend on every
    # request does not get an unsafe method to the shadow.
    k = start_kagami([production, newdb], hooks="""
  select_backends = function(req) return { "production", "newdb" } end,
""")
    with k.connect() as c:
        for method in UNSAFE:
            resp = c.request(method, "/echo?m=%s" % method,
                             body=b"write %s" % method.encode())
            assert resp.status == 200
            assert only_request(production, "/echo", method).body == \
                b"write %s" % method.encode()
        assert c.request("GET", "/echo?m=GET").status == 200  # the control
    newdb.wait_for_requests(1, "/echo")
    entries = k.wait_log_url("/echo?m=GET")
    assert [r.method for r in newdb.received()] == ["GET"]
    assert [e["method"] for e in k.log_entries()] == ["GET"]
    assert len(entries) == 1
