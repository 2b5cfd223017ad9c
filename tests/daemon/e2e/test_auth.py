#!/usr/bin/python3
"""End-to-end tests of galvanid's access control (docs/security.md).

The real daemon with tokens from a flag, a file and the environment; real
HTTP, WebSocket and SSE clients; its debug log searched for the secrets; the
start-up refusals (a token file others can read, a public address without a
token) checked on the real binary.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import GALVANID, DEADLINE, Daemon, wait_for  # noqa: E402
import storedb  # noqa: E402

FULL = "e2e-full-7f3a9c1d5b"
READ = "e2e-read-2b8e4f6a0c"


class TokenDaemon(Daemon):
    """A Daemon whose requests carry `token` unless told otherwise."""

    token = None

    def request(self, method, path, body=None, ctype="application/json", raw=None, headers=None):
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs and "token=" not in path:
            hdrs["Authorization"] = "Bearer " + self.token
        if "Authorization" in hdrs and hdrs["Authorization"] is None:
            del hdrs["Authorization"]  # explicitly none
        return Daemon.request(self, method, path, body, ctype, raw, hdrs)


def start(workdir, *args, env=None, token=None):
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        d = TokenDaemon(workdir, *args)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    d.token = token
    return d


def run_daemon(workdir, *args, env=None):
    """Run galvanid expecting it to refuse to start: (exit status, stderr)."""
    cmd = [GALVANID, "--db", os.path.join(workdir, "refused.db")] + list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE,
                       env=dict(os.environ, **(env or {})), cwd=workdir)
    return p.returncode, p.stderr


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-auth-")
        self.dir = self.tmp.name
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                rc = d.stop()
                self.assertEqual(rc, 0, "galvanid exited with %s:\n%s" % (rc, d.log()[-4000:]))
        self.tmp.cleanup()

    def daemon(self, *args, env=None, token=None):
        d = start(self.dir, "--db", os.path.join(self.dir, "g%d.db" % len(self.daemons)), *args, env=env,
                  token=token)
        self.daemons.append(d)
        return d

    def token_file(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # -- tests -----------------------------------------------------------------

    def test_token_file_guards_every_transport_and_is_never_logged(self):
        path = self.token_file("token", FULL + "\n")
        d = self.daemon("--token-file", path, "--read-token", READ, token=FULL)
        self.assertIn("auth=token+read_token", d.log())

        # no token: 401 with the challenge; /healthz stays open
        status, headers, body = d.request("GET", "/jobs", headers={"Authorization": None})
        self.assertEqual(status, 401)
        self.assertEqual({k.lower(): v for k, v in headers.items()}["www-authenticate"], 'Bearer realm="galvanid"')
        self.assertEqual(body["error"]["code"], "unauthorized")
        status, _, body = d.request("GET", "/healthz", headers={"Authorization": None})
        self.assertEqual((status, body["status"]), (200, "ok"))

        job = d.create(command=["sh", "-c", "echo hello; sleep 30"], name="guarded")
        self.assertEqual(d.wait_status(job["id"], "running")["name"], "guarded")
        # the header, and ?token= in the query (the browsers' way)
        status, _, body = d.request("GET", "/jobs/%d?token=%s" % (job["id"], FULL))
        self.assertEqual((status, body["id"]), (200, job["id"]))
        status, _, body = d.request("GET", "/jobs?limit=1&tok%%65n=%s" % FULL, headers={"Authorization": None})
        self.assertEqual((status, body["total"]), (200, 1))

        async def ws(url, headers=None):
            async with websockets.connect(url, extra_headers=headers or {}) as w:
                return json.loads(await asyncio.wait_for(w.recv(), DEADLINE))

        snap = asyncio.run(ws("ws://127.0.0.1:%d/ws/jobs?token=%s" % (d.port, FULL)))
        self.assertEqual([j["id"] for j in snap["jobs"]], [job["id"]])
        snap = asyncio.run(ws("ws://127.0.0.1:%d/ws/jobs" % d.port, {"Authorization": "Bearer " + READ}))
        self.assertEqual(snap["type"], "snapshot")
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
            asyncio.run(ws("ws://127.0.0.1:%d/ws/jobs?token=wrong" % d.port))
        self.assertEqual(cm.exception.status_code, 401)

        # SSE with the read-only token in the query
        s = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
        s.sendall(b"GET /events?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % READ.encode())
        got = b""
        while b"event: snapshot" not in got:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "SSE stream ended early")
            got += chunk
        s.close()

        # the read-only token cannot change anything
        status, _, body = d.request("POST", "/jobs/%d/cancel" % job["id"],
                                    headers={"Authorization": "Bearer " + READ})
        self.assertEqual((status, body["error"]["code"]), (403, "read_only_token"))
        self.assertEqual(d.job(job["id"])["status"], "running")
        status, _, body = d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual((status, body["status"]), (200, "cancelled"))

        # a wrong token in the query of a request that fails
        status, _, _ = d.request("GET", "/jobs?token=" + FULL[:-1] + "x")
        self.assertEqual(status, 401)
        rc = d.stop()
        self.assertEqual(rc, 0)
        log = d.log()
        # the debug log has every request line, with the query redacted
        self.assertIn('path="/jobs/%d?token=REDACTED"' % job["id"], log)
        self.assertIn("/events?token=REDACTED", log)
        self.assertIn('path="/jobs?limit=1&token=REDACTED"', log)
        for secret in (FULL, READ, FULL[:-1] + "x"):
            self.assertNotIn(secret, log)
        # nor does the job see it
        logs = os.path.join(self.dir, "g0.db.logs")
        with open(os.path.join(logs, os.listdir(logs)[0])) as f:
            self.assertEqual(f.read(), "hello\n")

    def test_token_from_flag_is_hidden_and_env_works(self):
        d = self.daemon("--token", FULL, token=FULL)
        with open("/proc/%d/cmdline" % d.proc.pid, "rb") as f:
            cmdline = f.read().split(b"\0")
        self.assertNotIn(FULL.encode(), cmdline)
        self.assertIn(b"x" * len(FULL), cmdline)
        self.assertEqual(d.request("GET", "/jobs")[0], 200)
        self.assertEqual(d.request("GET", "/jobs", headers={"Authorization": "Bearer x"})[0], 401)

        e = self.daemon(env={"GALVANI_TOKEN": "from-env-123", "GALVANI_READ_TOKEN": "ro-env-456"},
                        token="from-env-123")
        self.assertEqual(e.request("POST", "/start")[0], 201)
        status, _, body = e.request("POST", "/pause", headers={"Authorization": "Bearer ro-env-456"})
        self.assertEqual((status, body["error"]["code"]), (403, "read_only_token"))
        self.assertEqual(e.request("GET", "/jobs", headers={"Authorization": "Bearer ro-env-456"})[0], 200)
        e.request("POST", "/cancel")

    def test_start_up_refusals(self):
        loose = self.token_file("loose", FULL + "\n", 0o644)
        rc, err = run_daemon(self.dir, "--listen", "127.0.0.1:0", "--token-file", loose)
        self.assertEqual(rc, 2)
        self.assertIn("is accessible by group or others (mode 0644): make it private with chmod 600", err)
        self.assertNotIn(FULL, err)

        empty = self.token_file("empty", "\n")
        rc, err = run_daemon(self.dir, "--listen", "127.0.0.1:0", "--token-file", empty)
        self.assertEqual((rc, err.strip()), (2, "galvanid: the token in %s is empty" % empty))
        rc, err = run_daemon(self.dir, "--token", "a", "--token-file", empty)
        self.assertEqual((rc, err.strip()), (2, "galvanid: give --token or --token-file, not both"))
        rc, err = run_daemon(self.dir, "--token", "has space")
        self.assertEqual(rc, 2)
        self.assertIn("--token has a character that cannot go in an Authorization header", err)
        rc, err = run_daemon(self.dir, "--listen", "127.0.0.1:0", "--read-token", "ro-only-1")
        self.assertEqual(rc, 1)
        self.assertIn("a read-only token needs a full token too", err)

        # a public address without a token: refused, nothing bound
        rc, err = run_daemon(self.dir, "--listen", "0.0.0.0:0")
        self.assertEqual(rc, 1)
        self.assertIn("refusing to listen on 0.0.0.0:0 without a token", err)
        self.assertIn("--insecure", err)

        rc, err = run_daemon(self.dir, "--max-connections", "0")
        self.assertEqual((rc, err.strip()), (2, "galvanid: --max-connections takes a positive integer, not '0'"))
        rc, err = run_daemon(self.dir, "--request-timeout", "soon")
        self.assertEqual(rc, 2)
        self.assertIn("--request-timeout takes seconds", err)

    @unittest.skipIf(storedb.ON_POSTGRES, "runs galvanid in a network namespace of its own, where the test "
                     "PostgreSQL on the host's loopback is out of reach (the SQLite run covers it)")
    def test_public_address_with_insecure_or_token(self):
        """0.0.0.0 inside a fresh network namespace (nothing outside can reach
        it): --insecure and a token both let galvanid start there."""
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
            self.skipTest("unshare -n is not permitted here")
        for extra in (["--insecure"], ["--token", FULL]):
            cmd = ["unshare", "-n", GALVANID, "--listen", "0.0.0.0:0", "--db",
                   os.path.join(self.dir, "ns.db")] + extra
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            lines = []
            for line in p.stderr:
                lines.append(line)
                if "galvanid.listening" in line:
                    break
            p.terminate()
            rest = p.stderr.read()
            self.assertEqual(p.wait(DEADLINE), 0, "".join(lines) + rest)
            self.assertIn("galvanid.listening addr=0.0.0.0:", "".join(lines))
            self.assertNotIn(FULL, "".join(lines) + rest)

    def test_connection_cap_keeps_existing_clients(self):
        d = self.daemon("--max-connections", "4", "--request-timeout", "30")
        held = [socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE) for _ in range(3)]
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=DEADLINE)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        self.assertEqual(health["connections"], {"open": 4, "max": 4, "refused": 0})
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=DEADLINE)
        answer = b""
        while True:
            try:
                chunk = extra.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer)
        self.assertIn(b'"code":"too_many_connections"', answer)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        self.assertEqual(health["connections"]["refused"], 1)
        for s in held:
            s.close()
        conn.close()
        # (until the server has seen the closes, a request may itself be refused)
        wait_for(lambda: (lambda r: r[0] == 200 and r[2]["connections"]["open"] == 1)(d.request("GET", "/healthz")),
                 what="connections to close")
        d.wait_log("http.refused reason=max_connections open=4 max=4 refused_total=1")

    def test_log_limit(self):
        d = self.daemon("--log-limit", "1000")
        job = d.create(command=["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo 0123456789abcdefghi; i=$((i+1)); done"])
        d.wait_status(job["id"], "succeeded")
        status, _, log = d.request("GET", "/jobs/%d/log" % job["id"])
        self.assertEqual(status, 200)
        self.assertEqual(log, "0123456789abcdefghi\n" * 50 + "[galvani: log truncated]\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
