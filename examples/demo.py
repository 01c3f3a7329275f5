"""kagami demo (`make demo`): two versions of a small shop behind kagami.

1. starts the shop (examples/app.py) twice: production (the master) and
   newdb (a shadow that differs on a few paths);
2. runs `build/kagami run` with examples/demo.lua, moved to free ports and
   a diff log in a temporary directory;
3. sends about 50 requests through kagami, as a browser would;
4. waits for the diff log and prints what kagami found, then the report
   (`kagami report`) and the dashboard's address;
5. in a terminal, keeps everything running (with a request a second, so
   the dashboard moves) until Ctrl-C. When stdin is not a terminal (CI,
   scripts) or KAGAMI_DEMO_EXIT=1, it stops after printing instead.

Standard library only; takes a few seconds. The binary is $KAGAMI_BIN,
default build/kagami. The dashboard is on 127.0.0.1:8091 when that port
is free, else on another free port.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import app  # noqa: E402  (examples/app.py, next to this file)

KAGAMI = Path(os.environ.get("KAGAMI_BIN", ROOT / "build" / "kagami"))
REQUESTS = 50
ADMIN_PORT = 8091
PATHS = (["/"] * 6 + ["/about"] * 3 + ["/products"] * 6
         + ["/products/%d" % i for i in (1, 2, 3, 4, 4, 5, 9)]
         + ["/api/products"] * 5 + ["/api/products/%d" % i for i in (2, 4)]
         + ["/search?q=tea", "/search?q=cup", "/search?q=kettle"] * 2
         + ["/ads"] * 4)


def free_port(prefer=0):
    """`prefer` if it is free, else any free port."""
    for port in (prefer, 0) if prefer else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise SystemExit("no free port")


def write_config(workdir, listen, prod_port, newdb_port, admin_port):
    """examples/demo.lua with its addresses and diff log moved, and the
    results store and the admin listener (the dashboard) turned on."""
    text = (HERE / "demo.lua").read_text()
    diff_log = workdir / "kagami-diffs.jsonl"
    for old, new in (('"127.0.0.1:8090"', '"127.0.0.1:%d"' % listen),
                     ('"http://127.0.0.1:9001"',
                      '"http://127.0.0.1:%d"' % prod_port),
                     ('"http://127.0.0.1:9002"',
                      '"http://127.0.0.1:%d"' % newdb_port),
                     ('"kagami-diffs.jsonl"', '"%s"' % diff_log)):
        assert text.count(old) == 1, "demo.lua: expected one %s" % old
        text = text.replace(old, new)
    anchor = "  diff_log = "
    assert text.count(anchor) == 1, "demo.lua: expected one diff_log"
    text = text.replace(anchor, '  store = "%s",\n  admin = %d,\n%s'
                        % (workdir / "kagami.db", admin_port, anchor))
    path = workdir / "demo.lua"
    path.write_text(text)
    return path, diff_log


def wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("kagami exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("kagami is not listening on port %d" % port)


def send_traffic(port):
    """Sends REQUESTS GETs; returns {path: count}."""
    rng = random.Random(42)
    sent = defaultdict(int)
    for _ in range(REQUESTS):
        path = rng.choice(PATHS)
        url = "http://127.0.0.1:%d%s" % (port, path)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as e:  # 404 pages are traffic too
            e.read()
        sent[path] += 1
    # newdb answers /search slowly. kagami flags a slower endpoint only
    # with 20 samples on each side, so search a few more times; the client
    # never waits for the shadow, so this costs the demo nothing.
    for i in range(22):
        path = "/search?q=pot%d" % i
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as resp:
            resp.read()
        sent[path] += 1
    return sent


def read_log(path, want, timeout=5.0):
    """The diff log's entries, once `want` are there (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= want or time.monotonic() > deadline:
            return [json.loads(line) for line in lines if line.strip()]
        time.sleep(0.05)


def summarize(entries, sent):
    total = sum(sent.values())
    differed = [e for e in entries if not e.get("equal")]
    print("\nkagami demo: %d requests sent, %d compared with the shadow, "
          "%d differed\n" % (total, len(entries), len(differed)))

    by_path = defaultdict(list)
    for e in entries:
        by_path[e["url"].split("?")[0]].append(e)
    print("  %-18s %8s %8s %14s %10s" % ("path", "compared", "differed",
                                         "production ms", "newdb ms"))
    for path in sorted(by_path):
        es = by_path[path]
        print("  %-18s %8d %8d %14s %10s" % (
            path, len(es), sum(1 for e in es if not e.get("equal")),
            mean_ms(es, "production"), mean_ms(es, "newdb")))
    skipped = sorted(set(sent) - {e["url"] for e in entries})
    if skipped:
        print("  not shadowed (select_backends): %s" % ", ".join(skipped))

    example = next((e for e in differed if e.get("diff")), None)
    if example:
        print("\nexample: %s %s\n" % (example["method"], example["url"]))
        print("    " + example["diff"].rstrip("\n").replace("\n", "\n    "))
    print()


def report_json(store):
    """`kagami report --format json` on the demo's store, or None."""
    proc = subprocess.run([str(KAGAMI), "report", "--db", str(store), "--format", "json"],
                          capture_output=True, text=True, errors="replace", timeout=30)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def print_slower(store):
    """The endpoints kagami flags as slower on newdb: the report's own
    verdict (a shadow's p90 over latency_regression x the master's, with
    enough samples), so the demo never disagrees with it."""
    rep = report_json(store)
    if rep is None:
        return
    slower = [e.get("endpoint", "?") for e in rep.get("endpoints", [])
              if e.get("regression") or any(b.get("regression") for b in e.get("backends", []))]
    if slower:
        print("slower on newdb (flagged by kagami): %s\n" % ", ".join(slower))


def elapsed(es, name):
    vals = [e["backends"][name]["elapsed_ms"] for e in es
            if "elapsed_ms" in e["backends"].get(name, {})]
    return sum(vals) / len(vals) if vals else None


def mean_ms(es, name):
    v = elapsed(es, name)
    return "-" if v is None else "%.1f" % v


def print_report(store, staying):
    """Runs `kagami report` on this demo's results store and prints it."""
    proc = subprocess.run([str(KAGAMI), "report", "--db", str(store)],
                          capture_output=True, text=True, errors="replace",
                          timeout=30)
    if proc.returncode == 0:
        if staying:
            print("$ kagami report --db %s\n" % store)
        else:
            print("kagami report on the demo's store (removed when the demo ends):\n")
        print(proc.stdout.rstrip("\n") + "\n")
    elif "unknown command" not in proc.stderr:
        print("kagami report exited with %d:\n%s"
              % (proc.returncode, proc.stderr.strip()))


def stay_requested():
    """Keep serving after the summary: only for a person at a terminal."""
    if os.environ.get("KAGAMI_DEMO_EXIT", "") not in ("", "0"):
        return False
    return sys.stdin is not None and sys.stdin.isatty()


def trickle(port, stop):
    """A request a second through kagami, so the dashboard has live data."""
    rng = random.Random()
    while not stop.wait(1.0):
        try:
            url = "http://127.0.0.1:%d%s" % (port, rng.choice(PATHS))
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError):
            pass


def interrupt(signum, frame):
    raise KeyboardInterrupt


def serve_until_interrupted(proc, listen, url):
    # kagami runs in its own session, so a closed terminal (SIGHUP) or a
    # kill (SIGTERM) must reach it through this script's cleanup.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    print("kagami keeps running: proxy http://127.0.0.1:%d/, dashboard %s\n"
          "(a request a second keeps the dashboard moving). Ctrl-C stops."
          % (listen, url))
    stop = threading.Event()
    t = threading.Thread(target=trickle, args=(listen, stop), daemon=True)
    t.start()
    try:
        while proc.poll() is None:
            time.sleep(0.5)
        print("kagami exited with %s" % proc.returncode)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        stop.set()
        t.join(timeout=6)


def main():
    if not KAGAMI.is_file():
        print("demo: %s not found; run `make` first" % KAGAMI, file=sys.stderr)
        return 1
    prod_port, newdb_port, listen = free_port(), free_port(), free_port()
    admin_port = free_port(prefer=ADMIN_PORT)
    servers = [app.serve(prod_port, "production"),
               app.serve(newdb_port, "newdb")]
    proc = None
    with tempfile.TemporaryDirectory(prefix="kagami-demo-") as tmp:
        workdir = Path(tmp)
        config, diff_log = write_config(workdir, listen, prod_port,
                                        newdb_port, admin_port)
        stderr = open(workdir / "kagami.log", "wb")
        try:
            # Its own session: Ctrl-C at the terminal reaches only this
            # script, which then stops kagami with one SIGTERM (a second
            # signal would make kagami exit at once, with status 1).
            proc = subprocess.Popen([str(KAGAMI), "run", str(config)],
                                    stdout=stderr, stderr=stderr,
                                    stdin=subprocess.DEVNULL, cwd=workdir,
                                    start_new_session=True)
            wait_listening(listen, proc)
            print("kagami on 127.0.0.1:%d: production on :%d (master), "
                  "newdb on :%d" % (listen, prod_port, newdb_port))
            sent = send_traffic(listen)
            compared = sum(n for p, n in sent.items() if p != "/ads")
            entries = read_log(diff_log, compared)
            if len(entries) < compared:
                print("note: %d of %d diff-log lines after 5 s"
                      % (len(entries), compared))
            summarize(entries, sent)
            staying = stay_requested()
            print_report(workdir / "kagami.db", staying)
            print_slower(workdir / "kagami.db")
            url = "http://127.0.0.1:%d/" % admin_port
            if staying:
                print("dashboard: %s" % url)
                serve_until_interrupted(proc, listen, url)
            else:
                print("(not at a terminal, so the demo stops here and its dashboard and store go\n"
                      " with it; run `make demo` in a terminal to keep them up and browse them)")
        finally:
            rc = None
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
            for s in servers:
                s.shutdown()
                s.server_close()
            stderr.close()
            if rc not in (None, 0):
                print("kagami exited with %s; its log:" % rc, file=sys.stderr)
                sys.stderr.write((workdir / "kagami.log").read_text(
                    errors="replace")[-3000:])
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
