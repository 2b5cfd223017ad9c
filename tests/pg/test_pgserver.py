#!/usr/bin/python3
"""The throwaway PostgreSQL of the scale-out tests (pgserver.py) starts, serves, and leaves nothing behind --
as root (CI) through the `postgres` user, as anyone else as themselves.  A machine where PostgreSQL truly
cannot run fails loudly here rather than skipping every scale-out test in silence."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgserver import PgServer  # noqa: E402


class PgServerTest(unittest.TestCase):
    def test_start_query_two_databases_stop(self):
        with PgServer() as pg:
            self.assertEqual(pg.psql("SELECT 40 + 2").strip(), "42")
            a, b = pg.create_database("node_a"), pg.create_database("node_b")
            self.assertNotEqual(a, b)
            pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)", db="node_a")
            self.assertEqual(pg.psql("SELECT sum(x) FROM t", db="node_a").strip(), "3")
            # loopback only, and the unix socket lives in the test's own directory
            self.assertIn("127.0.0.1", pg.dsn)
            self.assertTrue(any(n.startswith(".s.PGSQL.") for n in os.listdir(pg.dir)), os.listdir(pg.dir))
            where = pg.dir
        self.assertFalse(os.path.exists(where))


if __name__ == "__main__":
    unittest.main(verbosity=2)
