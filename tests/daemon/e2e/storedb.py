"""What galvanid stored for `--db PATH`, read (or forged) by another connection, on whichever store the suite
runs: the SQLite file, or — under GALVANI_TEST_STORE=postgres (tests/pg/galvanid_pg.py) — the PostgreSQL
database that PATH stands for.

    rows = storedb.execute(db_path, "SELECT id, status FROM jobs WHERE id = ?", (3,))

Placeholders are `?` (SQLite's); values are ints, floats, strings, bools or None.  On PostgreSQL the query runs
through psql and each value comes back as the int, float or string it reads as (None for NULL), which is what
the suites compare.  ON_POSTGRES tells a test which store it is on (SQLite's own fault injection, the file's
permissions and PRAGMA checks have no PostgreSQL counterpart: those tests skip there, saying so)."""
import os
import re
import sqlite3
import subprocess
import sys

ON_POSTGRES = os.environ.get("GALVANI_TEST_STORE") == "postgres"
SQLITE_ONLY = "SQLite's own behaviour (its file, its fault injection): not a PostgreSQL store's"


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _value(text):
    if text == "\\N":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(e[-+]?\d+)?", text):
        return float(text)
    return text


def _pg(db_path, sql, params):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pg"))
    import galvanid_pg  # noqa: E402
    dsn = galvanid_pg.ensure_database(os.environ["GALVANI_TEST_PG"], galvanid_pg.database_for(db_path))
    parts = sql.split("?")
    if len(parts) - 1 != len(params):
        raise ValueError("%d placeholders, %d values" % (len(parts) - 1, len(params)))
    text = parts[0] + "".join(_literal(v) + p for v, p in zip(params, parts[1:]))
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-P", "null=\\N", "-v", "ON_ERROR_STOP=1",
                        dsn, "-c", text], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("psql: %s" % p.stderr)
    return [tuple(_value(f) for f in line.split("\x1f")) for line in p.stdout.splitlines() if line != ""]


def execute(db_path, sql, params=()):
    """Run one statement against the store of --db db_path (committed); its rows as tuples."""
    if ON_POSTGRES:
        return _pg(db_path, sql, params)
    con = sqlite3.connect(db_path, timeout=10)
    try:
        rows = con.execute(sql, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()
