"""Issue point 9: SIGINT/SIGTERM stop accepting, finish in-flight master
responses, flush the diff log and exit 0; log lines at start and stop name
the listen address and the backends."""

import os
import signal
import socket
import threading
import time

import pytest

import backends


def refused(port, within=2.0):
    """True once connecting to `port` is refused (polled up to `within`)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wait_stderr(k, needles, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        text = k.stderr()
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def in_background(fn):
    result = {}

    def run():
        try:
            result["value"] = fn()
        except Exception as e:  # noqa: BLE001 - checked by the caller
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_finishes_in_flight_request(proxy, sig):
    k = proxy.kagami
    t, result = in_background(lambda: k.get("/slow/1500"))
    proxy.production.wait_for_requests(1, "/slow/1500")
    k.send_signal(sig)
    assert refused(k.port), "still accepting connections after %s" % sig.name
    t.join(10)
    assert "error" not in result, result.get("error")
    resp = result["value"]
    assert resp.status == 200 and resp.body == b"slow 1500\n"
    assert k.wait(10) == 0
    entry = [e for e in k.log_entries() if e["url"] == "/slow/1500"]
    assert len(entry) == 1, k.log_entries()
    assert entry[0]["backends"]["production"]["status"] == 200


def test_stop_flushes_every_pending_diff_line(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb", delay=0.5)  # shadows still in flight
    k = start_kagami([production, newdb])
    urls = ["/text/%d" % i for i in range(1, 11)]
    with k.connect() as c:
        for u in urls:
            assert c.request("GET", u).status == 200
    assert k.stop() == 0
    assert sorted(e["url"] for e in k.log_entries()) == sorted(urls)


def test_idle_keep_alive_clients_do_not_block_stop(proxy):
    k = proxy.kagami
    conns = [k.connect() for _ in range(3)]
    try:
        for c in conns:
            assert c.request("GET", "/text/1").status == 200
        t0 = time.monotonic()
        assert k.stop(timeout=10) == 0
        assert time.monotonic() - t0 < 5
        for c in conns:
            assert c.closed_by_peer(timeout=2)
    finally:
        for c in conns:
            c.close()


def test_start_and_stop_are_logged(proxy):
    k = proxy.kagami
    start_text = wait_stderr(k, [k.listen, "production", "newdb"])
    assert k.listen in start_text, start_text
    assert "production" in start_text and "newdb" in start_text, start_text
    assert k.stop() == 0
    stop_text = k.stderr()[len(start_text):]
    assert k.listen in stop_text, "stop log does not name %s:\n%s" % (
        k.listen, stop_text)
    assert "production" in stop_text and "newdb" in stop_text, stop_text


def test_several_workers_serve_and_stop_cleanly(make_backend, start_kagami):
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb], options={"workers": 2})
    for i in range(12):
        with k.connect() as c:
            assert c.request("GET", "/text/2").body == backends.text_body(2)
            assert c.request("GET", "/binary").body == backends.binary_body()
    assert k.stop() == 0
    assert len(k.log_entries()) == 24


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names.append(f.read().strip())
    return names


def test_threads_are_named_for_top_and_perf(make_backend, start_kagami):
    """Each thread says what it does (top -H, ps -L, perf; the bench splits
    kagami's CPU by these names)."""
    production = make_backend("production")
    newdb = make_backend("newdb")
    k = start_kagami([production, newdb], options={"workers": 2})
    for _ in range(8):
        with k.connect() as c:
            assert c.request("GET", "/text/2").body == backends.text_body(2)
    k.wait_log(8)
    names = thread_names(k.proc.pid)
    # one per event loop (a thread made by a worker would pass for it)
    assert names.count("kg-worker-0") == 1 and names.count("kg-worker-1") == 1, names
    # every thread of libuv's pool (4 unless UV_THREADPOOL_SIZE says otherwise)
    assert names.count("kg-pool") == int(os.environ.get("UV_THREADPOOL_SIZE", "4")), names
    assert "kg-store" in names, names  # the default store's writer
    assert k.stop() == 0
