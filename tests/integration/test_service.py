"""Running under a service manager (systemd): the readiness protocol
(sd_notify over $NOTIFY_SOCKET), the store's default place
($STATE_DIRECTORY), and what kagami says when it cannot write its files."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from backends import free_port
from harness import kagami_bin, sanitizer_env, sanitizer_reports

CONFIG = """\
return {
  listen = "127.0.0.1:%d",
  backends = { production = { url = "http://127.0.0.1:%d", master = true } },
}
"""


def write_config(path, port, extra=""):
    text = CONFIG % (port, free_port())
    if extra:
        text = text.replace("\n}\n", "\n  %s\n}\n" % extra)
    path.write_text(text)
    return path


def start(config, cwd, env_extra, **kw):
    env = sanitizer_env()
    env.pop("NOTIFY_SOCKET", None)
    env.pop("STATE_DIRECTORY", None)
    env.update(env_extra)
    return subprocess.Popen([str(kagami_bin()), "run", str(config)], cwd=cwd,
                            env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", **kw)


def finish(proc, sig=signal.SIGTERM):
    """Stops proc with sig (None: it was signalled already) and returns its
    exit code and stderr."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    assert not sanitizer_reports(err), err
    return proc.returncode, err


def wait_listening(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail("kagami not listening on %d" % port)


def recv_state(sock, timeout=10):
    """The next datagram as a dict of its VAR=value lines."""
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n") if line)


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_ready_reload_stopping(tmp_path, abstract):
    """READY=1 once the listener accepts, RELOADING=1 then READY=1 around a
    SIGHUP reload, STOPPING=1 at SIGTERM: what Type=notify waits for."""
    port = free_port()
    config = write_config(tmp_path / "kagami.lua", port, "store = false,")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "@kagami-test-%d-%d" % (os.getpid(), port)
        sock.bind("\0" + name[1:])
    else:
        name = str(tmp_path / "notify.sock")
        sock.bind(name)
    with sock:
        proc = start(config, tmp_path, {"NOTIFY_SOCKET": name})
        stop = signal.SIGTERM
        try:
            ready = recv_state(sock)
            assert ready == {"READY": "1"}
            # Ready means ready: the port accepts at once.
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            proc.send_signal(signal.SIGHUP)
            reloading = recv_state(sock)
            assert reloading["RELOADING"] == "1"
            assert int(reloading["MONOTONIC_USEC"]) > 0
            assert recv_state(sock) == {"READY": "1"}
            # A refused reload (the running config stays) must still end
            # with READY=1, or `systemctl reload` would hang.
            config.write_text("return {")
            proc.send_signal(signal.SIGHUP)
            assert recv_state(sock)["RELOADING"] == "1"
            assert recv_state(sock) == {"READY": "1"}
            proc.send_signal(signal.SIGTERM)
            stop = None  # a second SIGTERM would mean "exit now"
            assert recv_state(sock) == {"STOPPING": "1"}
        finally:
            rc, err = finish(proc, stop)
    assert rc == 0, err


def test_notify_unreachable_socket_is_logged_not_fatal(tmp_path):
    """A NOTIFY_SOCKET nobody listens on costs a log line, not the proxy."""
    port = free_port()
    config = write_config(tmp_path / "kagami.lua", port, "store = false,")
    proc = start(config, tmp_path,
                 {"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    wait_listening(port, proc)
    rc, err = finish(proc)
    assert rc == 0, err
    assert "NOTIFY_SOCKET: cannot send READY=1" in err


def test_store_defaults_to_state_directory(tmp_path):
    """systemd's StateDirectory= sets $STATE_DIRECTORY: a config without
    `store` keeps its results there, not in the working directory."""
    state = tmp_path / "state"
    state.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    port = free_port()
    config = write_config(tmp_path / "kagami.lua", port)
    proc = start(config, cwd,
                 {"STATE_DIRECTORY": "%s:%s" % (state, tmp_path / "other")})
    wait_listening(port, proc)
    rc, err = finish(proc)
    assert rc == 0, err
    assert (state / "kagami.db").is_file()
    assert not (cwd / "kagami.db").exists()
    assert "store %s" % (state / "kagami.db") in err


def test_store_in_unwritable_directory_says_what_to_set():
    """As a service, the working directory is "/" or another place the
    service user cannot write: the error names the key and a value."""
    # Not under tmp_path, whose parents only root may enter.
    with tempfile.TemporaryDirectory(prefix="kagami-ro-") as top:
        top = Path(top)
        os.chmod(top, 0o755)
        cwd = top / "readonly"
        cwd.mkdir(mode=0o755)
        config = write_config(top / "kagami.lua", free_port())
        os.chmod(config, 0o644)
        if os.geteuid() == 0:
            # root writes anywhere: run as nobody, as a service user would.
            if shutil.which("setpriv") is None:
                pytest.skip("needs setpriv to drop root")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534",
                   "--clear-groups"]
        else:
            os.chmod(cwd, 0o555)
            cmd = []
        env = sanitizer_env()
        env.pop("STATE_DIRECTORY", None)
        try:
            proc = subprocess.run(cmd + [str(kagami_bin()), "run", str(config)],
                                  cwd=cwd, env=env, capture_output=True,
                                  text=True, errors="replace", timeout=20)
        finally:
            os.chmod(cwd, 0o755)
    assert not sanitizer_reports(proc.stderr), proc.stderr
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "store kagami.db:" in err
    assert "cannot write in the working directory %s:" % cwd in err
    assert 'set store = "/var/lib/kagami/kagami.db"' in err
    assert "or store = false in %s" % config in err
