#!/usr/bin/python3
"""galvanid on PostgreSQL, for the existing e2e suites (issue 18: "the whole e2e suite runs against the
PostgreSQL store too").

CTest runs a suite's script through with_pg.py (a throwaway server: GALVANI_TEST_PG) with GALVANID pointing
here and GALVANID_REAL at the real binary.  The suites start galvanid with `--db PATH`; this turns that into
`--store postgres://.../g_<hash of PATH>` — one database per PATH, created on first use, so a restart with the
same PATH finds its jobs again, exactly as with the file — and keeps the local files where the suite expects
them (PATH.logs, PATH.run, PATH.pid).  Then it execs galvanid: same pid, so kill -9 and the pid file mean what
they mean.  GALVANI_TEST_STORE=postgres tells a suite which store it runs on (tests skip what is SQLite's
own: a file's permissions, SQLite's fault injection)."""
import hashlib
import os
import subprocess
import sys


def database_for(path):
    return "g_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]


def ensure_database(admin_dsn, name):
    base = admin_dsn.rsplit("/", 1)[0]
    exists = subprocess.run(["psql", "-X", "-q", "-A", "-t", admin_dsn, "-c",
                             "SELECT 1 FROM pg_database WHERE datname = '%s'" % name],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if exists.returncode != 0:
        sys.exit("galvanid_pg: cannot reach the test PostgreSQL: " + exists.stderr)
    if exists.stdout.strip() != "1":
        made = subprocess.run(["psql", "-X", "-q", admin_dsn, "-c", 'CREATE DATABASE "%s"' % name],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if made.returncode != 0 and "already exists" not in made.stderr:
            sys.exit("galvanid_pg: CREATE DATABASE failed: " + made.stderr)
    return "%s/%s" % (base, name)


def main():
    real = os.environ.get("GALVANID_REAL")
    admin = os.environ.get("GALVANI_TEST_PG")
    if not real or not admin:
        sys.exit("galvanid_pg: GALVANID_REAL and GALVANI_TEST_PG must be set (tests/CMakeLists.txt does)")
    args = sys.argv[1:]
    out, db, given = [], None, set()
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--db", "-d") and i + 1 < len(args):
            db = args[i + 1]
            i += 2
            continue
        if a.startswith("--db="):
            db = a[5:]
            i += 1
            continue
        given.add(a.split("=", 1)[0])
        out.append(a)
        i += 1
    if "-h" in given or "--help" in given or "-V" in given or "--version" in given:
        os.execv(real, [real] + out)
    if db is not None:
        out = ["--store", ensure_database(admin, database_for(db))] + out
        # One node per --db PATH, the same across restarts on any port (its default, HOST:PORT, would change
        # with --listen 127.0.0.1:0).
        if "--node-id" not in given and not os.environ.get("GALVANI_NODE_ID"):
            out += ["--node-id", "node-" + database_for(db)[2:]]
        for flag, suffix, env in (("--log-dir", ".logs", "GALVANI_LOG_DIR"), ("--run-dir", ".run", "GALVANI_RUN_DIR"),
                                  ("--pid-file", ".pid", "GALVANI_PID_FILE")):
            if flag not in given and not os.environ.get(env):
                out += [flag, db + suffix]
    os.execv(real, [real] + out)


if __name__ == "__main__":
    main()
