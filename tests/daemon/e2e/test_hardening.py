#!/usr/bin/python3
"""What the hostile run of issue 15 ("Hardening") found, against the real
galvanid (the HTTP-level points are in tests/daemon/test_api_hardening.c):

  - a refused --listen (a public address without a token) touches nothing:
    no database, no log or run directory is created;
  - job logs are as private as the database: 0600 files in a 0700
    directory (an existing 0755 one is tightened);
  - a spec at the size limits survives restarts whole: the daemon keeps
    the command and environment packed in memory and never rewrites the
    stored spec, so a queued job still runs with its environment after a
    restart;
  - --max-connections-per-client: one client at its cap, holding the
    reserved connections too, is refused with a 503 that says why, and
    /healthz gets in again once the reserved ones lapse.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import http.client
import os
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DEADLINE, GALVANID, Daemon, DaemonTest, wait_for  # noqa: E402
import storedb  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class RefusedListen(unittest.TestCase):
    def test_refused_listen_touches_nothing(self):
        with tempfile.TemporaryDirectory(prefix="galvani-hardening-") as tmp:
            db = os.path.join(tmp, "fresh.db")
            p = subprocess.run([GALVANID, "--listen", "0.0.0.0:0", "--db", db, "--log-level", "debug"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE, cwd=tmp)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("refusing to listen on 0.0.0.0:0 without a token", p.stderr)
            self.assertEqual(sorted(os.listdir(tmp)), [], "a refused start created files")
            self.assertNotIn("store.", p.stderr)  # the store was never opened

            p = subprocess.run([GALVANID, "--max-connections-per-client", "0", "--db", db],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE, cwd=tmp)
            self.assertEqual((p.returncode, p.stderr.strip()),
                             (2, "galvanid: --max-connections-per-client takes a positive integer, not '0'"))


class Private(DaemonTest):
    @unittest.skipIf(storedb.ON_POSTGRES, storedb.SQLITE_ONLY)
    def test_logs_are_as_private_as_the_database(self):
        status, _, job = self.d.request("POST", "/jobs", {"command": ["echo", "secret"]})
        self.assertEqual(status, 201, job)
        wait_for(lambda: self.d.job(job["id"])["status"] == "succeeded", what="the job to finish")
        logs = os.path.join(self.dir, "galvani.db.logs")
        self.assertEqual(mode(os.path.join(self.dir, "galvani.db")), 0o600)
        self.assertEqual(mode(logs), 0o700)
        self.assertEqual(mode(os.path.join(logs, "%d.log" % job["id"])), 0o600)

    def test_an_open_log_directory_is_tightened(self):
        self.assertEqual(self.d.stop(), 0)
        logs = os.path.join(self.dir, "galvani.db.logs")
        os.chmod(logs, 0o755)  # as an older galvanid made it
        self.d = Daemon(self.dir)
        self.assertEqual(mode(logs), 0o700)


class SpecsSurviveRestarts(DaemonTest):
    extra_args = ("--max-running", "1")

    def test_a_queued_job_keeps_its_command_and_env_across_a_restart(self):
        status, _, blocker = self.d.request("POST", "/jobs", {"command": ["sleep", "300"]})
        self.assertEqual(status, 201, blocker)
        wait_for(lambda: self.d.job(blocker["id"])["status"] == "running", what="the blocker to run")
        # at the limits: 4096 arguments, 1024 variables
        args = ["sh", "-c", 'echo "$V7 $#"', "sh"] + ["a%d" % i for i in range(4092)]
        env = {"V%d" % i: "value-%d" % i for i in range(1024)}
        status, _, job = self.d.request("POST", "/jobs", {"command": args, "env": env})
        self.assertEqual(status, 201, job)
        self.assertEqual(job["status"], "queued")
        # one over: refused, and nothing was created
        status, _, err = self.d.request("POST", "/jobs", {"command": args + ["x"]})
        self.assertEqual(status, 413, err)
        self.assertEqual(err["error"]["code"], "spec_too_large")
        self.assertIn("more than the limit of 4096", err["error"]["message"])
        self.assertEqual(self.d.request("GET", "/jobs")[2]["total"], 2)

        self.assertEqual(self.d.stop(), 0)
        self.d = Daemon(self.dir, *self.extra_args)
        self.assertEqual(self.d.job(job["id"])["command"], args)
        status, _, _ = self.d.request("POST", "/jobs/%d/cancel" % blocker["id"], raw=b"", ctype=None)
        self.assertEqual(status, 200)
        wait_for(lambda: self.d.job(job["id"])["status"] == "succeeded", what="the queued job to run")
        log = os.path.join(self.dir, "galvani.db.logs", "%d.log" % job["id"])
        with open(log) as f:
            self.assertEqual(f.read(), "value-7 4092\n")
        # and again after one more restart (its status updates never
        # touched the stored spec)
        self.assertEqual(self.d.stop(), 0)
        self.d = Daemon(self.dir, *self.extra_args)
        self.assertEqual(self.d.job(job["id"])["command"], args)


class PerClientCap(DaemonTest):
    extra_args = ("--max-connections-per-client", "16")

    def healthz(self):
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=DEADLINE)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            return r.status, r.getheader("Connection"), r.read()
        except (ConnectionError, http.client.HTTPException) as e:
            return None, None, str(e).encode()
        finally:
            c.close()

    def test_one_client_cannot_lock_everyone_out(self):
        self.d.wait_log("max_connections_per_client=16 reserved_connections=8")
        held = [socket.create_connection(("127.0.0.1", self.d.port), timeout=DEADLINE) for _ in range(16)]
        try:
            # at its cap, this client still gets /healthz (a reserved
            # connection: one request, then closed)
            status, connection, body = self.healthz()
            self.assertEqual((status, connection), (200, "close"), body)
            # with the 8 reserved ones held too, it is refused and told why
            held += [socket.create_connection(("127.0.0.1", self.d.port), timeout=DEADLINE) for _ in range(8)]

            def refused():
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=DEADLINE)
                answer = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
                except (ConnectionResetError, socket.timeout):
                    pass
                s.close()
                return answer.startswith(b"HTTP/1.1 503") and b"holds its limit of 16 connections" in answer
            wait_for(refused, what="a connection past the cap and the reserve to be refused")
            self.d.wait_log("http.refused reason=max_connections_per_client")
            # the reserved ones lapse (2 s) even though their holder sends
            # nothing: /healthz gets in again
            wait_for(lambda: self.healthz()[0] == 200, what="/healthz to get in again")
        finally:
            for s in held:
                s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
