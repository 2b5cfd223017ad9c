"""A throwaway PostgreSQL server for tests (issue 18: several galvanid nodes on one PostgreSQL).

Debian's `postgresql` package, started by the test itself: `initdb` into a temporary directory, a free TCP
port on loopback only, its unix socket in that directory, torn down at the end.  PostgreSQL refuses to run as
root, and CI runs as root: then the server runs as the `postgres` system user (the package creates it) through
`runuser`, and the directory is handed to that user; as any other user it runs as that user.

    with PgServer() as pg:
        pg.dsn                      # postgresql://galvani@127.0.0.1:PORT/postgres
        pg.create_database("n1")    # a fresh database, its DSN

Or as a process of its own, for a test that is not Python (tests/web/test_cluster.mjs):

    /usr/bin/python3 tests/pg/pgserver.py serve [--database NAME ...]

starts the server, creates each NAME, prints one JSON line on stdout
({"dsn": ..., "databases": {NAME: DSN}, "dir": ..., "log": ...}, or {"unavailable": WHY} and exit status 3 when
PostgreSQL cannot run here) and serves until its stdin closes (its parent is gone) or a SIGTERM/SIGINT/SIGHUP,
then stops the server and removes its directory.

Only loopback, `trust` authentication for the one role `galvani`: a test database, never a real one.  fsync is
off (a crashed test machine loses nothing worth keeping); the store's own durability tests use SQLite or a real
kill -9 of galvanid, not of PostgreSQL.
"""
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

DEADLINE = 60.0


def pg_bindir():
    """The newest installed server's bin directory (/usr/lib/postgresql/N/bin), or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(dirs[-1]) if dirs else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgUnavailable(Exception):
    """PostgreSQL cannot run here (not installed, or no unprivileged user to run it as)."""


class PgServer:
    def __init__(self, prefix="galvani-pg-", also_listen=None):
        """also_listen: (address, clients): one more address to serve on, and the network whose clients it trusts
        there, ("10.231.7.1", "10.231.7.0/30") (the partition test's veth link)."""
        self.also_listen = also_listen
        self.bindir = pg_bindir()
        if not self.bindir:
            raise PgUnavailable("PostgreSQL's server is not installed (Debian package postgresql; scripts/deps)")
        self.as_user = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
            self.as_user = pw
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.started = False
        if self.as_user:
            os.chown(self.dir, self.as_user.pw_uid, self.as_user.pw_gid)

    def _run(self, *argv, check=True):
        cmd = list(argv)
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user.pw_name, "--"] + cmd
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE,
                           cwd=self.dir)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def start(self):
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust", "-U", "galvani",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        listen = "127.0.0.1"
        if self.also_listen:
            address, clients = self.also_listen
            listen += "," + address
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write("host all galvani %s trust\n" % clients)
        opts = "-p %d -k %s -c listen_addresses=%s -c fsync=off -c max_connections=200" % (self.port, self.dir,
                                                                                            listen)
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"),
                  "-o", opts, "-w", "-t", str(int(DEADLINE)), "start")
        self.started = True
        return self

    @property
    def dsn(self):
        return self.dsn_for("postgres")

    def dsn_for(self, db):
        return "postgresql://galvani@127.0.0.1:%d/%s" % (self.port, db)

    def psql(self, sql, db="postgres"):
        """Run SQL with psql (the client tools come with the server package); its output."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.dsn_for(db), "-c", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
        if p.returncode != 0:
            raise RuntimeError("psql failed (%d): %s" % (p.returncode, p.stderr))
        return p.stdout

    def create_database(self, name):
        self.psql('CREATE DATABASE "%s"' % name.replace('"', ""))
        return self.dsn_for(name)

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.started:
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop",
                      check=False)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def serve(argv):
    """`pgserver.py serve [--database NAME ...]`: see the module's docstring."""
    import argparse
    ap = argparse.ArgumentParser(prog="pgserver.py serve")
    ap.add_argument("--database", action="append", default=[], help="a database to create (repeatable)")
    args = ap.parse_args(argv)

    def stop_on(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_on)
    try:
        pg = PgServer()
    except PgUnavailable as e:
        print(json.dumps({"unavailable": str(e)}), flush=True)
        return 3
    try:
        pg.start()
        databases = {name: pg.create_database(name) for name in args.database}
        print(json.dumps({"dsn": pg.dsn, "databases": databases, "dir": pg.dir, "log": os.path.join(pg.dir, "log")}),
              flush=True)
        # until the parent closes our stdin (or dies: the same EOF)
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal does not cut the cleanup short
        pg.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: pgserver.py serve [--database NAME ...]")
    sys.exit(serve(sys.argv[2:]))
