#!/usr/bin/python3
"""Run a command with a throwaway PostgreSQL (pgserver.py): GALVANI_TEST_PG is its DSN.

    with_pg.py ./test_pgconn

For the C tests of the PostgreSQL code (CTest runs them through this).  Exits with the command's status; a
server that cannot start is a failure, loudly, not a skip."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgserver import PgServer  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: with_pg.py COMMAND [ARGS...]\n")
        return 2
    with PgServer() as pg:
        env = dict(os.environ, GALVANI_TEST_PG=pg.dsn)
        rc = subprocess.call(sys.argv[1:], env=env)
        if rc != 0:
            sys.stderr.write("PostgreSQL's log:\n" + pg.log()[-4000:])
        return rc


if __name__ == "__main__":
    sys.exit(main())
