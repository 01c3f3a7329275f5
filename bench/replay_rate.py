#!/usr/bin/python3
"""Rate accuracy of `kagami replay --rate`: the issue asks for the achieved
rate to be within 5% of the requested one over a 10 s replay. A timing
claim like that is measured here, not asserted in the test suite.

For each requested rate, the script starts the test backend of the
integration tests (tests/integration/backends.py, in this process), writes
a URL list long enough never to run out, and runs

    kagami replay URLS --target BACKEND --rate R --duration 10s --json

It then measures the rate twice:
  - at the backend: requests received divided by the time between the first
    and the last arrival, less one interval (n - 1 gaps);
  - as kagami saw it: "sent" / "elapsed_s" from the replay's JSON summary.
and prints the relative error of each against R.

Usage: bench/replay_rate.py [--rates 100,500,1000] [--seconds 10]
                            [--binary build/kagami] [--max-error 5]
Python 3 standard library only (plus the repository's test backend).
Exit status: 0 when every backend-measured rate is within --max-error
percent, 1 when one is not, 2 when the harness itself failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from backends import Backend  # noqa: E402


def measure(binary, rate, seconds, workdir):
    """Runs one replay at `rate`; returns a dict of what was measured."""
    backend = Backend("bench").start()
    try:
        urls = Path(workdir) / ("urls-%g.txt" % rate)
        count = int(rate * seconds * 1.5) + 100
        urls.write_text("".join("/users/%d\n" % i for i in range(count)))
        cmd = [str(binary), "replay", str(urls), "--target", backend.url,
               "--rate", "%g" % rate, "--duration", "%gs" % seconds,
               "--concurrency", "256", "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd),
                                                      proc.returncode,
                                                      proc.stderr))
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        got = sorted(r.at for r in backend.received())
    finally:
        backend.stop()
    n = len(got)
    span = got[-1] - got[0] if n > 1 else 0.0
    at_backend = (n - 1) / span if span > 0 else 0.0
    as_sent = summary["sent"] / summary["elapsed_s"] \
        if summary["elapsed_s"] else 0.0
    return {"rate": rate, "received": n, "span_s": span,
            "backend_rate": at_backend, "sent": summary["sent"],
            "kagami_rate": as_sent, "errors": summary["errors"],
            "backend_error_pct": 100.0 * abs(at_backend - rate) / rate,
            "kagami_error_pct": 100.0 * abs(as_sent - rate) / rate}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="100,500,1000",
                    help="comma-separated requests per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--binary", default=os.environ.get(
        "KAGAMI_BIN", str(ROOT / "build" / "kagami")))
    ap.add_argument("--max-error", type=float, default=5.0,
                    help="percent allowed between requested and measured")
    args = ap.parse_args(argv)
    if not Path(args.binary).is_file():
        print("replay_rate: %s not built (run `make`)" % args.binary,
              file=sys.stderr)
        return 2
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="kagami-replay-rate-") as tmp:
        for rate in rates:
            try:
                results.append(measure(args.binary, rate, args.seconds, tmp))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError,
                    KeyError) as e:
                print("replay_rate: %s" % e, file=sys.stderr)
                return 2
    print("kagami replay --rate accuracy over %g s (limit %g%%)"
          % (args.seconds, args.max_error))
    print("%10s %9s %12s %9s %12s %9s %7s" % (
        "requested", "received", "at backend", "error", "as sent", "error",
        "errors"))
    bad = False
    for r in results:
        ok = r["backend_error_pct"] <= args.max_error
        bad |= not ok
        print("%8g/s %9d %10.1f/s %8.2f%% %10.1f/s %8.2f%% %7d%s" % (
            r["rate"], r["received"], r["backend_rate"],
            r["backend_error_pct"], r["kagami_rate"], r["kagami_error_pct"],
            r["errors"], "" if ok else "  OVER THE LIMIT"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
