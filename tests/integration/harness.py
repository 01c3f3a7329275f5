"""Running the kagami binary under test: where it is, its sanitizer
environment, its Lua config, and a running `kagami run` process (Kagami).

The binary is $KAGAMI_BIN, default build/asan/kagami in the repository.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import rawhttp

REPO_ROOT = Path(__file__).resolve().parents[2]
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "LeakSanitizer")
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
LOG_TIMEOUT = 5.0


def kagami_bin():
    env = os.environ.get("KAGAMI_BIN")
    path = Path(env) if env else REPO_ROOT / "build" / "asan" / "kagami"
    if not path.is_file():
        if env:
            pytest.fail("KAGAMI_BIN=%s does not exist" % env)
        pytest.skip("%s not built (run `make build/asan/kagami`)" % path)
    return path


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                   "halt_on_error=1:detect_stack_use_after_return=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def sanitizer_reports(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def run_cli(*args, timeout=20):
    """Runs the binary with `args` (not `run`); returns CompletedProcess with
    text stdout/stderr, and fails the test on a sanitizer report."""
    proc = subprocess.run([str(kagami_bin()), *map(str, args)],
                          capture_output=True, text=True, errors="replace",
                          timeout=timeout, env=sanitizer_env(),
                          cwd=REPO_ROOT)
    found = sanitizer_reports(proc.stderr)
    assert not found, "sanitizer report (%s):\n%s" % (found, proc.stderr)
    return proc


# --- Lua config rendering ---------------------------------------------------
def lua(value, indent=""):
    """Python value -> Lua literal (str, bool, int, float, list, dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"') \
            .replace("\n", "\\n")
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(lua(v) for v in value) + " }"
    if isinstance(value, dict):
        inner = indent + "  "
        items = ["%s%s = %s," % (inner, k, lua(v, inner))
                 for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + indent + "}"
    raise TypeError("no Lua literal for %r" % (value,))


def render_config(listen, backends, master, diff_log=None, options=None,
                  hooks=""):
    """A config file's text. `backends` is a list of Backend objects, the
    one named `master` is the master; `hooks` is Lua source for extra table
    fields (e.g. function definitions), inserted as is."""
    table = {"listen": listen,
             "backends": {b.name: ({"url": b.url, "master": True}
                                   if b.name == master else {"url": b.url})
                          for b in backends}}
    if diff_log:
        table["diff_log"] = str(diff_log)
        # The results store beside the diff log, in the test's tmp dir
        # (without a diff log, "kagami.db" lands in kagami's working
        # directory, which the fixtures also make a tmp dir).
        table["store"] = str(Path(diff_log).parent / "kagami.db")
    # The test backends name themselves in X-Backend: a difference by
    # design, so the comparison is told to ignore it.
    table["ignore_headers"] = ["X-Backend"]
    table.update(options or {})
    body = lua(table)
    if hooks:
        body = body[:-1] + hooks.strip("\n") + "\n}"
    return "-- written by tests/integration/conftest.py\nreturn " + body + "\n"


# --- the proxy process ------------------------------------------------------
class Kagami:
    """A running `kagami run CONFIG` with its files under a directory."""

    def __init__(self, workdir, config_text, port, diff_log):
        self.workdir = Path(workdir)
        self.port = port
        self.listen = "127.0.0.1:%d" % port
        self.diff_log = Path(diff_log) if diff_log else None
        self.config = self.workdir / "kagami.lua"
        self.config.write_text(config_text)
        self.stderr_path = self.workdir / "kagami.stderr"
        self.proc = None
        self.returncode = None

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(kagami_bin()), "run", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
            env=sanitizer_env(), cwd=self.workdir)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("kagami exited with %d before listening:\n%s"
                            % (self.proc.returncode, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                                 timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("kagami not listening on %s after %.0fs:\n%s"
                    % (self.listen, timeout, self.stderr()))

    def stderr(self):
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for exit; returns the exit code, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._err.close()
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals and waits. Kills it (and fails) if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.proc.kill()
            self.wait(5)
            pytest.fail("kagami did not exit within %.0fs of %s:\n%s"
                        % (timeout, sig.name, self.stderr()[-4000:]))
        return rc

    def running(self):
        return self.proc.poll() is None

    def assert_clean(self):
        text = self.stderr()
        found = sanitizer_reports(text)
        assert not found, "sanitizer report (%s) in kagami stderr:\n%s" % (
            found, text[-8000:])

    # --- talking to it ---------------------------------------------------
    def connect(self, timeout=rawhttp.DEFAULT_TIMEOUT):
        return rawhttp.Connection(self.port, timeout=timeout)

    def request(self, method, target, headers=None, body=None, **kw):
        return rawhttp.request(self.port, method, target, headers, body, **kw)

    def get(self, target, **kw):
        return self.request("GET", target, **kw)

    # --- the diff log ----------------------------------------------------
    def log_entries(self):
        """Complete JSON lines written so far (a partial last line is not
        returned)."""
        try:
            data = self.diff_log.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def wait_log(self, count=1, match=None, timeout=LOG_TIMEOUT):
        """Polls the diff log until at least `count` entries satisfy
        `match` (a predicate on the entry; default: any). Returns them."""
        deadline = time.monotonic() + timeout
        while True:
            entries = [e for e in self.log_entries()
                       if match is None or match(e)]
            if len(entries) >= count:
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(
                    "diff log: %d matching entries after %.1fs, wanted %d; "
                    "log has:\n%s" % (len(entries), timeout, count,
                                      "\n".join(map(json.dumps,
                                                    self.log_entries()))))
            time.sleep(0.02)

    def wait_log_url(self, url, count=1, timeout=LOG_TIMEOUT):
        return self.wait_log(count, lambda e: e.get("url") == url, timeout)
