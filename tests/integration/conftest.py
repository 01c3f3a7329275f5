"""Fixtures for kagami's black-box tests.

- make_backend(name, variant=None, fault=None): an in-process test backend
  (see backends.py), stopped at teardown.
- start_kagami(backends, options=None, hooks=""): writes a Lua config into
  tmp_path, runs `kagami run` with stderr in a file, waits until it accepts
  connections (see harness.py). At teardown it is stopped with SIGTERM and
  the test fails unless it exits 0 with no sanitizer report on stderr.
- proxy: the usual setup, production (master) + newdb (variant newdb) +
  kagami with a diff log.
"""

import signal
from types import SimpleNamespace

import pytest

from backends import Backend, free_port
from harness import STOP_TIMEOUT, Kagami, render_config, sanitizer_reports


# --- fixtures ---------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_backend():
    started = []

    def make(name="production", variant=None, fault=None, **kw):
        b = Backend(name, variant=variant, fault=fault, **kw).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def start_kagami(request, tmp_path, make_backend):
    started = []

    def start(backends, master="production", options=None, hooks="",
              diff_log=True):
        workdir = tmp_path / ("kagami%d" % len(started))
        workdir.mkdir()
        log = workdir / "diffs.jsonl" if diff_log else None
        port = free_port()
        text = render_config("127.0.0.1:%d" % port, backends, master, log,
                             options, hooks)
        k = Kagami(workdir, text, port, log)
        started.append(k)
        return k.start()

    yield start
    problems = []
    for k in started:
        if k.proc is None:
            continue
        if k.returncode is None:
            if k.running():
                k.send_signal(signal.SIGTERM)
            if k.wait(STOP_TIMEOUT) is None:
                k.proc.kill()
                k.wait(5)
                problems.append("kagami did not exit within %.0fs of SIGTERM"
                                % STOP_TIMEOUT)
        if k.returncode != 0:
            problems.append("kagami exited with %s" % k.returncode)
        found = sanitizer_reports(k.stderr())
        if found:
            problems.append("sanitizer report %s" % found)
        failed = getattr(request.node, "rep_call", None)
        if problems or (failed is not None and failed.failed):
            print("---- kagami stderr (%s) ----\n%s" % (k.config,
                                                        k.stderr()[-6000:]))
    assert not problems, "; ".join(problems)


@pytest.fixture
def proxy(make_backend, start_kagami):
    """production (master) and newdb (variant newdb) behind kagami."""
    production = make_backend("production")
    newdb = make_backend("newdb", variant="newdb")
    k = start_kagami([production, newdb])
    return SimpleNamespace(kagami=k, production=production, newdb=newdb)
