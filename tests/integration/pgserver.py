"""A real PostgreSQL 15 for the fleet tests (issue 15), from Debian's
packages, in a temporary directory.

The server runs as an unprivileged user (PostgreSQL refuses root, and the
tests run as root in CI: `nobody` then, through setpriv), listens on a
Unix socket in its directory and on a free 127.0.0.1 port, trusts local
connections, and has a superuser `kagami`. It can be stopped (fast or
immediate) and started again on the same data, for outage tests.

    with PgServer() as pg:
        url = pg.create_database("t1")   # postgresql://kagami@127.0.0.1:P/t1
        pg.psql("t1", "SELECT 1")
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from backends import free_port

BIN = "/usr/lib/postgresql/15/bin"
USER = "kagami"


def available():
    return os.path.exists(os.path.join(BIN, "postgres")) and shutil.which("psql")


class PgServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kagami-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "postgres.log")
        self._as = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self._as = ["setpriv", "--reuid=%d" % nobody.pw_uid,
                        "--regid=%d" % nobody.pw_gid, "--clear-groups"]
        subprocess.run(self._as + [os.path.join(BIN, "initdb"), "-D", self.data,
                                   "-U", USER, "--auth=trust", "-E", "UTF8",
                                   "--no-sync"],
                       check=True, capture_output=True, cwd=self.dir)

    # --- lifecycle ---------------------------------------------------------
    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self._as + [os.path.join(BIN, "postgres"), "-D", self.data,
                        "-k", self.dir, "-p", str(self.port),
                        "-c", "listen_addresses=127.0.0.1",
                        "-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=50"],
            stdout=logf, stderr=logf, cwd=self.dir)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                str(self.port)])
            if r.returncode == 0:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("postgres did not start:\n" + open(self.log).read()[-3000:])

    def stop(self, mode="fast"):
        """mode: "fast" (clients are disconnected, a clean shutdown) or
        "immediate" (as if the machine went away)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        import signal
        self.proc.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- databases ---------------------------------------------------------
    def url(self, db, user=USER):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)

    def create_database(self, name):
        self.psql("postgres", 'CREATE DATABASE "%s"' % name)
        return self.url(name)

    def psql(self, db, sql):
        """Runs sql; returns the rows as lists of strings."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v",
                            "ON_ERROR_STOP=1", self.url(db), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (sql, r.stderr))
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def scalar(self, db, sql):
        rows = self.psql(db, sql)
        return rows[0][0] if rows else None
