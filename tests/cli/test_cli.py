#!/usr/bin/python3
"""End-to-end tests of the galvani CLI against the real galvanid.

One galvanid runs on an ephemeral loopback port with a fresh SQLite file for
the whole class; every test runs the real `galvani` binary with subprocess,
its output piped (so never a terminal, except in the one test that provides a
pseudo-terminal on purpose).

Run with GALVANID=/path/to/galvanid GALVANI_CLI=/path/to/galvani (CTest sets
both).
"""
import fcntl
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest

GALVANID = os.environ.get("GALVANID", "galvanid")
CLI = os.environ.get("GALVANI_CLI", "galvani")
DEADLINE = 30.0  # seconds any single wait may take before the test fails (a busy machine is slow, not wrong)

# The daemon fixture and the polling helper are the end-to-end suite's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "e2e"))
import test_e2e  # noqa: E402
from test_e2e import Daemon, end_leftover_jobs, wait_for  # noqa: E402

test_e2e.DEADLINE = DEADLINE  # the same start/stop bounds as before


class Lines:
    """The lines a process writes to a pipe, read by a thread, so that a test
    can wait for one with a deadline (a bare readline() would wait forever
    on a CLI that hangs)."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.seen = []
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream):
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def until(self, pred, what):
        """Read up to and including the first line for which pred is true;
        fails at the deadline or at the end of the stream."""
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.q.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("timed out waiting for %s; got %r" % (what, self.seen))
            if line is None:
                raise AssertionError("the output ended before %s; got %r" % (what, self.seen))
            self.seen.append(line)
            if pred(line):
                return line

    def rest(self):
        """Every line up to the end of the stream."""
        end = time.monotonic() + DEADLINE
        while True:
            try:
                line = self.q.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("timed out waiting for the end of the output; got %r" % (self.seen,))
            if line is None:
                return self.seen
            self.seen.append(line)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
VERDICT = r"job %d %s: %s \((.*)\) after \d+(\.\d|m\d\ds|h\d\dm)s?$"


class PtySession:
    """galvani on a pseudo-terminal of a given size, stdin included (so that
    it can be sent keys); the test keeps the terminal's slave side open to
    read its settings (raw mode on while watching, restored at the end)."""

    def __init__(self, args, url, cols, rows=24):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, GALVANI_URL=url, TERM="xterm")
        env.pop("NO_COLOR", None)
        # its own session with the terminal as its controlling one, as in a
        # shell: Ctrl-C on the terminal is then a SIGINT to it
        self.p = subprocess.Popen([CLI] + list(args), stdin=self.slave, stdout=self.slave,
                                  stderr=subprocess.PIPE, env=env, start_new_session=True,
                                  preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.out = b""
        self.done = False

    def text(self):
        return self.out.decode(errors="replace")

    def _read(self, timeout):
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.out += os.read(self.master, 65536)
            except OSError:
                pass

    def until(self, pred, what):
        """Read until pred(text so far) is true; fails at the deadline."""
        end = time.monotonic() + DEADLINE
        while not pred(self.text()):
            left = end - time.monotonic()
            if left <= 0:
                self.p.kill()
                raise AssertionError("timed out waiting for %s; screen: %r" % (what, self.text()[-3000:]))
            self._read(min(left, 0.5))
        return self.text()

    def lflag(self):
        return termios.tcgetattr(self.slave)[3]

    def send(self, data):
        os.write(self.master, data)

    def finish(self):
        """Wait for galvani's end; (exit status, terminal lflag, stderr)."""
        rc = self.p.wait(DEADLINE)
        self._read(0)
        while select.select([self.master], [], [], 0)[0]:
            before = len(self.out)
            self._read(0)
            if len(self.out) == before:
                break
        lflag = self.lflag()
        self.done = True
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stderr.close()
        os.close(self.master)
        os.close(self.slave)
        return rc, lflag, err

    def close(self):
        if not self.done:
            self.p.kill()
            self.finish()


class FixedPortDaemon(Daemon):
    """A galvanid that can be stopped and started again on the same port and
    database (the reconnect test)."""

    def start(self):
        if not getattr(self, "fixed", None):
            return Daemon.start(self)
        saved = self.args
        self.args = saved + ["--listen", "127.0.0.1:%d" % self.fixed]
        try:
            return Daemon.start(self)
        finally:
            self.args = saved


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="galvani-cli-")
        cls.d = Daemon(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        # Jobs outlive galvanid under their supervisors: end what is left.
        end_leftover_jobs(os.path.join(cls.tmp.name, "galvani.db.run"))
        cls.tmp.cleanup()
        # A sanitizer build of galvanid reports leaks through its exit status.
        assert rc == 0, "galvanid exited with %s:\n%s" % (rc, "".join(cls.d.lines)[-4000:])

    # -- helpers ----------------------------------------------------------

    def cli(self, *args, server=None, env_url=True):
        """Run galvani with piped output; every output is checked for escape
        codes, since piped output must be plain text."""
        env = dict(os.environ)
        env.pop("NO_COLOR", None)
        env.pop("GALVANI_URL", None)
        if env_url:
            env["GALVANI_URL"] = server or self.d.url
        p = subprocess.run([CLI] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=DEADLINE, env=env)
        self.assertNotIn("\x1b", p.stdout, "escape code in piped stdout of %s" % (args,))
        self.assertNotIn("\x1b", p.stderr, "escape code in piped stderr of %s" % (args,))
        return p

    def ok(self, *args):
        p = self.cli(*args)
        self.assertEqual(p.returncode, 0, "galvani %s: %s" % (" ".join(args), p.stderr))
        self.assertEqual(p.stderr, "")
        return p.stdout

    def ok_json(self, *args):
        return json.loads(self.ok("--json", *args))

    def job(self, job_id):
        return self.ok_json("show", str(job_id))

    def wait_status(self, job_id, *statuses):
        return wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(self.job(job_id)), DEADLINE,
                        what="job %d to be %s" % (job_id, "/".join(statuses)))

    def sleeper(self, *extra):
        # (an hour: it must still be running at the end of any test, however
        # slow the machine; the cleanup cancels it)
        job = self.ok_json("run", *extra, "--", "sleep", "3600")
        self.addCleanup(self.cli, "cancel", str(job["id"]))
        return job

    def gates(self):
        """Files a job can wait for, so that it moves on only once the test
        has seen what it had to see (not "each state lasts 0.4 s, long enough
        on a slow machine").  Returns (wait, release): wait(n) is the shell
        code that waits for gate n, release(n) opens it."""
        d = tempfile.mkdtemp(prefix="gates-", dir=self.tmp.name)

        def wait(n):
            return "while [ ! -e %s/%d ]; do sleep 0.02; done" % (d, n)

        def release(n):
            open(os.path.join(d, str(n)), "w").close()
        return wait, release

    def steps(self, tail=""):
        """A job that goes 25, 50, 75, 100 %, waiting at 25, 50 and 75 until
        the test releases gate 1, 2, 3.  Returns (shell script, release)."""
        wait, release = self.gates()
        script = "; ".join("echo ::progress %d; %s" % (25 * i, wait(i)) for i in (1, 2, 3))
        return script + "; echo ::progress 100" + tail, release

    # -- tests ------------------------------------------------------------

    def test_run_ls_show(self):
        job = self.ok_json("run", "--name", "t-run", "--param", "lr=0.5", "--param", "tag=abc",
                           "--param", "steps=[1,2]", "--", "sleep", "3600")
        self.addCleanup(self.cli, "cancel", str(job["id"]))
        self.assertEqual(job["name"], "t-run")
        self.assertEqual(job["kind"], "process")
        self.assertEqual(job["command"], ["sleep", "3600"])
        self.assertEqual(job["shell"], False)
        self.assertEqual(job["pause_mode"], "stop")
        self.assertEqual(job["params"], {"lr": 0.5, "tag": "abc", "steps": [1, 2]})
        self.assertIn(job["status"], ("queued", "running"))
        jid = job["id"]

        # Without --json, run prints just the new id.
        out = self.ok("run", "--name", "t-run2", "--", "sleep", "3600")
        self.assertRegex(out, r"^\d+\n$")
        self.addCleanup(self.cli, "cancel", out.strip())
        self.assertEqual(int(out), jid + 1)

        self.wait_status(jid, "running")
        lines = self.ok("ls").splitlines()
        self.assertEqual(lines[0].split(), ["ID", "NAME", "STATUS", "PROGRESS", "STARTED"])
        row = [l.split() for l in lines[1:] if l.split()[0] == str(jid)]
        self.assertEqual(len(row), 1, lines)
        self.assertEqual(row[0][1:4], ["t-run", "running", "0%"])
        self.assertRegex(row[0][4], r"^\d{4}-\d\d-\d\dT")

        listed = self.ok_json("ls")
        self.assertIn(jid, [j["id"] for j in listed["jobs"]])
        running = self.ok_json("ls", "--status", "running")
        self.assertIn(jid, [j["id"] for j in running["jobs"]])
        self.assertEqual({j["status"] for j in running["jobs"]}, {"running"})
        self.assertNotIn(jid, [j["id"] for j in self.ok_json("ls", "--status=succeeded")["jobs"]])

        fields = dict(re.match(r"^(\S+)\s+(.*)$", l).groups() for l in self.ok("show", str(jid)).splitlines()
                      if re.match(r"^\S+\s+\S", l))
        self.assertEqual(fields["id"], str(jid))
        self.assertEqual(fields["name"], "t-run")
        self.assertEqual(fields["status"], "running")
        self.assertEqual(fields["command"], '["sleep","3600"]')
        self.assertEqual(json.loads(fields["params"]), {"lr": 0.5, "tag": "abc", "steps": [1, 2]})
        shown = self.job(jid)
        self.assertEqual(shown["id"], jid)
        self.assertEqual(shown["status"], "running")

    def test_run_shell_cooperative_and_logs(self):
        job = self.ok_json("run", "--shell", "--pause-mode", "cooperative", "--name", "t-log", "--",
                           "echo", "hello-from-job;", "echo", "::progress", "100")
        self.assertEqual(job["shell"], True)
        self.assertEqual(job["command"], "echo hello-from-job; echo ::progress 100")
        self.assertEqual(job["pause_mode"], "cooperative")
        done = self.wait_status(job["id"], "succeeded", "failed")
        self.assertEqual(done["status"], "succeeded")
        self.assertEqual(done["progress"], 100)
        self.assertEqual(self.ok("logs", str(job["id"])), "hello-from-job\n::progress 100\n")

    def test_pause_resume_cancel(self):
        jid = self.sleeper()["id"]
        self.wait_status(jid, "running")
        self.assertEqual(self.ok("pause", str(jid)), "job %d: paused (0%%)\n" % jid)
        self.assertEqual(self.job(jid)["status"], "paused")
        # Pausing a paused job is refused by the daemon: exit 1, its message.
        p = self.cli("pause", str(jid))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("job %d is paused" % jid, p.stderr)
        self.assertEqual(self.ok_json("resume", str(jid))["status"], "running")
        self.assertEqual(self.job(jid)["status"], "running")
        self.assertEqual(self.ok("cancel", str(jid)), "job %d: cancelled (0%%)\n" % jid)
        self.assertEqual(self.job(jid)["status"], "cancelled")

        # Several ids in one command: each is acted on, one JSON line each.
        a, b = self.sleeper()["id"], self.sleeper()["id"]
        out = self.ok("--json", "cancel", str(a), str(b)).splitlines()
        self.assertEqual([(j["id"], j["status"]) for j in map(json.loads, out)],
                         [(a, "cancelled"), (b, "cancelled")])

    def test_set_params(self):
        jid = self.sleeper("--param", "tag=old", "--param", "keep=1")["id"]
        job = self.ok_json("set", str(jid), "lr=0.05", "n=3", "flag=true", "s=hello world",
                           "arr=[1,2]", "tag=null", 'q="7"')
        self.assertEqual(job["params"], {"keep": 1, "lr": 0.05, "n": 3, "flag": True,
                                         "s": "hello world", "arr": [1, 2], "q": "7"})
        self.assertEqual(self.job(jid)["params"], job["params"])
        out = self.ok("set", str(jid), "lr=0.1")
        self.assertEqual(out, 'job %d params: {"arr":[1,2],"flag":true,"keep":1,"lr":0.1,"n":3,'
                              '"q":"7","s":"hello world"} (revision 2)\n' % jid)

    def test_demo_job(self):
        job = self.ok_json("start")
        self.assertEqual(job["kind"], "demo")
        self.assertIn(job["status"], ("queued", "running"))
        self.wait_status(job["id"], "running")
        out = self.ok("pause")
        self.assertRegex(out, r"^job %d: paused \(\d+%%\)\n$" % job["id"])
        self.assertEqual(self.job(job["id"])["status"], "paused")
        p = self.cli("start")  # a demo job is already there
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("galvani: "), p.stderr)
        self.assertEqual(self.ok_json("resume")["status"], "running")
        self.assertRegex(self.ok("cancel"), r"^job %d: cancelled \(\d+%%\)\n$" % job["id"])
        self.assertEqual(self.job(job["id"])["status"], "cancelled")
        p = self.cli("cancel")
        self.assertEqual(p.returncode, 1)
        self.assertIn("job %d is cancelled" % job["id"], p.stderr)

    def test_unknown_job(self):
        for args in (["show", "987654"], ["pause", "987654"], ["resume", "987654"],
                     ["cancel", "987654"], ["set", "987654", "a=1"], ["logs", "987654"]):
            p = self.cli(*args)
            self.assertEqual(p.returncode, 1, args)
            self.assertEqual(p.stdout, "", args)
            self.assertEqual(p.stderr, "galvani: no job 987654\n", args)

    def test_daemon_down(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        s.close()  # nothing listens there now
        msg = ("galvani: cannot reach galvanid at %s (is it running? start it with: bash scripts/run)\n" % url)
        for args in (["ls"], ["show", "1"], ["start"], ["run", "--", "true"]):
            p = self.cli(*args, server=url)  # through GALVANI_URL
            self.assertEqual((p.returncode, p.stdout, p.stderr), (1, "", msg), args)
        p = self.cli("--server", url, "ls", env_url=False)
        self.assertEqual((p.returncode, p.stderr), (1, msg))
        p = self.cli("ls", "--server=" + url)  # the option wins over GALVANI_URL
        self.assertEqual((p.returncode, p.stderr), (1, msg))

    def test_usage_errors(self):
        before = self.ok_json("ls")["total"]
        for args in ([], ["frob"], ["--bogus", "ls"], ["show"], ["show", "abc"], ["show", "0"],
                     ["show", "1", "2"], ["run"], ["run", "--name"], ["run", "--name", "x"],
                     ["run", "--pause-mode", "bogus", "--", "true"], ["run", "--bogus", "--", "true"],
                     ["run", "--param", "novalue", "--", "true"], ["set", "1"], ["set", "1", "novalue"],
                     ["set", "x", "a=1"], ["ls", "extra"], ["ls", "--status", "BAD;"], ["pause", "-x"],
                     ["pause", "1", "x"], ["logs"], ["start", "1"], ["--server"], ["ls", "--status", "bogus"],
                     ["ls", "--status", "running,bogus"], ["ls", "--limit", "0"], ["ls", "--limit", "1001"],
                     ["ls", "--limit", "x"], ["ls", "--name"], ["ls", "--name", ""], ["rm"], ["rm", "-f", "1"],
                     ["rerun"], ["watch", "-x"], ["run", "--retries", "x", "--", "true"], ["show", "--bogus", "1"]):
            p = self.cli(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertEqual(p.stdout, "", args)
            self.assertIn("galvani", p.stderr, args)
        self.assertEqual(self.ok_json("ls")["total"], before, "a usage error sent a request")

    def test_help_and_version(self):
        out = self.ok("--help")
        self.assertTrue(out.startswith("usage: galvani "))
        for cmd in ("run", "rerun", "ls", "show", "pause", "resume", "cancel", "rm", "set", "logs", "start",
                    "watch", "nodes"):
            self.assertRegex(out, r"\n  %s\b" % cmd)
            sub = self.ok(cmd, "--help")
            self.assertTrue(sub.startswith("usage: galvani %s" % cmd), sub)
        self.assertIn("--pause-mode", self.ok("run", "--help"))
        for opt in ("--follow", "--cwd", "--env", "--clean-env", "--timeout", "--retries", "--backoff",
                    "--priority", "--label", "--param"):
            self.assertIn(opt, self.ok("run", "--help"))
        for opt in ("--status", "--name", "--label", "--limit"):
            self.assertIn(opt, self.ok("ls", "--help"))
        self.assertRegex(self.ok("--version"), r"^galvani \d+\.\d+\.\d+\n$")

    def on_pty(self, *args, on_output=None):
        """Run galvani with stdout on a pseudo-terminal; returns (rc, output).
        on_output(text so far) is called after each read (to release gates)."""
        master, slave = pty.openpty()
        env = dict(os.environ, GALVANI_URL=self.d.url)
        env.pop("NO_COLOR", None)
        p = subprocess.Popen([CLI] + list(args), stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE, env=env)
        os.close(slave)
        chunks = []
        end = time.monotonic() + DEADLINE
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or not select.select([master], [], [], left)[0]:
                    p.kill()
                    raise AssertionError("galvani %s: no end of output in %.0f s: %r" %
                                         (" ".join(args), DEADLINE, b"".join(chunks)))
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not data:
                    break
                chunks.append(data)
                if on_output:
                    on_output(b"".join(chunks).decode(errors="replace"))
        finally:
            os.close(master)
            rc = p.wait(DEADLINE)
            p.stderr.close()
        return rc, b"".join(chunks).decode()

    def popen(self, *args):
        env = dict(os.environ, GALVANI_URL=self.d.url)
        env.pop("NO_COLOR", None)
        p = subprocess.Popen([CLI] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)

        def end():
            if p.poll() is None:
                p.kill()
                p.wait(DEADLINE)
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(end)
        return p

    def test_run_follow(self):
        # The job's output is streamed while it runs: the first line is
        # printed before the job goes on (it waits for the test).
        wait, release = self.gates()
        script = "echo line 1; %s; echo line 2; echo oops >&2; exit 3" % wait(1)
        p = self.popen("run", "--follow", "--name", "t-follow", "--", "sh", "-c", script)
        out = Lines(p.stdout)
        self.assertEqual(out.until(lambda l: True, "the first line"), "line 1\n")
        jid = self.ok_json("ls", "--name", "t-follow")["jobs"][0]["id"]
        self.assertEqual(self.job(jid)["status"], "running")
        release(1)
        self.assertEqual("".join(out.rest()), "line 1\nline 2\noops\n")
        # stdout is the job's output alone; galvani's own lines go to stderr,
        # ending with the verdict; the exit status is the job's.
        self.assertEqual(p.wait(DEADLINE), 3)
        err = p.stderr.read().splitlines()
        self.assertEqual(err[0], "job %d created" % jid)
        self.assertRegex(err[-1], VERDICT % (jid, "t-follow", "failed"))
        self.assertIn("(exited with status 3)", err[-1])

        # success: 0; a missing program: its reason, and 125
        p = self.cli("run", "-f", "--name", "t-ok", "--", "sh", "-c", "echo fine")
        self.assertEqual((p.returncode, p.stdout), (0, "fine\n"), p.stderr)
        self.assertRegex(p.stderr.splitlines()[-1], VERDICT % (int(p.stderr.split()[1]), "t-ok", "succeeded"))
        self.assertIn("(exit 0)", p.stderr)
        p = self.cli("run", "--follow", "--", "galvani-no-such-program")
        self.assertEqual((p.returncode, p.stdout), (125, ""), p.stderr)
        jid = int(p.stderr.split()[1])
        self.assertRegex(p.stderr.splitlines()[-1], VERDICT % (jid, "galvani-no-such-program", "failed"))
        self.assertIn("(no such command: galvani-no-such-program (not found in PATH))", p.stderr)
        # killed by a signal: 128+N; cancelled: 130
        p = self.cli("run", "-f", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(p.returncode, 128 + 9, p.stderr)
        wait, release = self.gates()
        p = self.popen("run", "-f", "--name", "t-cancel", "--", "sh", "-c", "echo started; " + wait(1))
        Lines(p.stdout).until(lambda l: l == "started\n", "the job to start")
        jid = self.ok_json("ls", "--name", "t-cancel")["jobs"][0]["id"]
        self.ok("cancel", str(jid))
        self.assertEqual(p.wait(DEADLINE), 130)
        self.assertRegex(p.stderr.read().splitlines()[-1], r"^job %d t-cancel: cancelled\b" % jid)

        # --json: the new job, then the finished job, one line each
        p = self.cli("--json", "run", "--follow", "--", "sh", "-c", "echo not-in-json; exit 4")
        self.assertEqual(p.returncode, 4, p.stderr)
        first, last = map(json.loads, p.stdout.splitlines())
        self.assertIn(first["status"], ("queued", "running"))
        self.assertEqual((last["id"], last["status"], last["exit_code"]), (first["id"], "failed", 4))
        self.assertEqual(p.stderr, "")

    def test_watch_ids(self):
        a = self.ok_json("run", "--name", "w-a", "--", "sh", "-c",
                         "for i in 1 2 3 4; do echo ::progress $((i*25)); sleep 0.1; done")["id"]
        b = self.ok_json("run", "--name", "w-b", "--", "sh", "-c", "sleep 0.3")["id"]
        p = self.cli("watch", str(a), str(b))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        for jid, name in ((a, "w-a"), (b, "w-b")):
            self.assertTrue(any(re.match(VERDICT % (jid, name, "succeeded"), l) for l in lines), lines)
        self.assertEqual(self.job(a)["status"], "succeeded")
        # An already finished job: the snapshot says so, watch ends at once.
        self.assertRegex(self.ok("watch", str(a)), "^" + (VERDICT % (a, "w-a", "succeeded"))[:-1] + "\n$")
        # watch ID exits like run --follow: with the first job that did not succeed
        c = self.ok_json("run", "--name", "w-c", "--", "sh", "-c", "exit 7")["id"]
        p = self.cli("watch", str(a), str(c))
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertRegex(p.stdout.splitlines()[-1], VERDICT % (c, "w-c", "failed"))
        m = self.ok_json("run", "--", "galvani-no-such-program")["id"]
        p = self.cli("watch", str(m))
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertRegex(p.stdout, r"^job %d galvani-no-such-program: failed \(no such command: " % m)
        self.assertNotIn("0%", p.stdout)
        for args in (["watch", "987654"], ["watch", str(a), "987654"]):
            p = self.cli(*args)
            self.assertEqual((p.returncode, p.stderr), (1, "galvani: no job 987654\n"), args)
        self.assertEqual(self.cli("watch", "x").returncode, 2)

    def test_watch_all(self):
        w = self.popen("watch")
        out = Lines(w.stdout)
        # The job moves on only once watch has shown it, so whether watch
        # subscribed before it was created (a "job" event) or after (in the
        # snapshot), it is shown, and its progress follows.
        wait, release = self.gates()
        jid = self.ok_json("run", "--name", "w-all", "--", "sh", "-c",
                           "%s; echo ::progress 40; %s" % (wait(1), wait(2)))["id"]
        out.until(lambda l: l.startswith("job %d w-all: " % jid), "watch to show the job")
        release(1)
        out.until(lambda l: l == "job %d w-all: running 40%%\n" % jid, "40 %")
        release(2)
        out.until(lambda l: re.match(VERDICT % (jid, "w-all", "succeeded"), l), "the job to succeed")
        w.terminate()
        w.wait(DEADLINE)
        out.rest()  # to the end of the pipe, so the reader is done before the cleanup closes it

    def test_watch_on_a_terminal(self):
        script, release = self.steps()
        jid = self.ok_json("run", "--name", "w-tty", "--", "sh", "-c", script)["id"]
        released = set()

        def on_output(text):
            # each state is released once the terminal has shown it
            for i in (1, 2, 3):
                if i not in released and "] %3d%%" % (25 * i) in text:
                    released.add(i)
                    release(i)
        rc, out = self.on_pty("watch", str(jid), on_output=on_output)
        self.assertEqual(rc, 0, out)
        # Redrawn in place: each frame moves the cursor up over the last one
        # (the header and the job's line).
        frames = out.split("\x1b[2A")
        self.assertGreaterEqual(len(frames), 3, out)
        self.assertIn("[########################] 100% \x1b[32msucceeded", frames[-1])
        self.assertIn("%-3d w-tty" % jid, frames[-1])
        self.assertIn("jobs: ", frames[0])
        # the verdict follows the last frame
        self.assertRegex(ANSI.sub("", frames[-1]).splitlines()[-1], VERDICT % (jid, "w-tty", "succeeded"))
        self.assertTrue(any("[############------------]  50%" in f for f in frames), out)

    def test_colours_only_on_a_terminal(self):
        """Piped output has no escape codes (checked on every call by cli());
        this proves the check can fail: on a terminal the status is coloured."""
        jid = self.sleeper()["id"]
        self.wait_status(jid, "running")
        rc, tty_out = self.on_pty("ls")
        self.assertEqual(rc, 0)
        self.assertIn("\x1b[34mrunning", tty_out)
        self.assertNotIn("\x1b", self.ok("ls"))

    def test_watch_redraws_in_tmux(self):
        """`galvani watch` in a real terminal emulator (tmux): what the screen
        shows, sampled with capture-pane, is one line per job whose bar and
        percentage change in place -- the block is redrawn, not appended."""
        if not shutil.which("tmux"):
            self.skipTest("tmux is not installed (scripts/deps installs it)")
        script, release = self.steps()
        jid = self.ok_json("run", "--name", "w-tmux", "--", "sh", "-c", script)["id"]
        sock = os.path.join(self.tmp.name, "tmux-%d.sock" % jid)
        tmux = ["tmux", "-S", sock]
        inner = "GALVANI_URL=%s %s watch %d; echo EXIT=$?; sleep 60" % (self.d.url, CLI, jid)
        subprocess.run(tmux + ["-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "12", inner],
                       check=True, timeout=DEADLINE, env=dict(os.environ, TERM="xterm"))
        self.addCleanup(subprocess.run, tmux + ["kill-server"], capture_output=True, timeout=DEADLINE)
        screens = []
        released = set()
        end = time.monotonic() + 2 * DEADLINE
        while time.monotonic() < end:
            screen = subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True, text=True,
                                    timeout=DEADLINE, check=True).stdout
            if not screens or screens[-1] != screen:
                screens.append(screen)
            if "EXIT=" in screen:
                break
            # the job goes on from 25, 50, 75 % only once a sample showed it
            for i in (1, 2, 3):
                if i not in released and "] %3d%%" % (25 * i) in screen:
                    released.add(i)
                    release(i)
            time.sleep(0.05)
        final = screens[-1]
        self.assertIn("EXIT=0", final)
        row = re.compile(r"^%-3d w-tmux +\[([#-]{24})\] +(\d+)%% (\w+)" % jid)
        seen = []
        for screen in screens:
            rows = [m for m in map(row.match, screen.splitlines()) if m]
            if not rows and not seen:
                continue  # before the first draw
            # exactly one line for the job on every screen, always under the header
            self.assertEqual(len(rows), 1, screen)
            self.assertTrue(screen.splitlines()[0].startswith("jobs: "), screen)
            self.assertTrue(row.match(screen.splitlines()[1]), screen)
            state = (int(rows[0].group(2)), rows[0].group(3), rows[0].group(1).count("#"))
            if not seen or seen[-1] != state:
                seen.append(state)
        self.assertEqual(seen[-1], (100, "succeeded", 24))
        percents = [p for p, _, _ in seen]
        self.assertEqual(percents, sorted(percents), seen)  # redrawn forward, never backward
        self.assertGreaterEqual(len(set(percents)), 3, seen)  # at least two redraws seen between
        for p, _, bar in seen:
            self.assertEqual(bar, int(p * 24 / 100 + 0.5))

    def test_run_cwd_and_env(self):
        # By default: the caller's directory and environment (minus the CLI's token).
        here = tempfile.mkdtemp(prefix="cwd-", dir=self.tmp.name)
        env = dict(os.environ, GALVANI_URL=self.d.url, GALVANI_TEST_VAR="from the caller",
                   GALVANI_TOKEN="not-for-the-job")
        script = 'pwd; echo "var=$GALVANI_TEST_VAR"; echo "extra=$EXTRA"; echo "token=${GALVANI_TOKEN-unset}"'
        p = subprocess.run([CLI, "run", "--follow", "--", "sh", "-c", script], cwd=here, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s\nvar=from the caller\nextra=\ntoken=unset\n" % os.path.realpath(here))
        jid = int(p.stderr.split()[1])
        spec = self.job(jid)["spec"]
        self.assertEqual(spec["cwd"], here)
        self.assertEqual(spec["env"]["GALVANI_TEST_VAR"], "from the caller")
        self.assertNotIn("GALVANI_TOKEN", spec["env"])
        # show counts the variables, never prints their values
        shown = self.ok("show", str(jid))
        self.assertIn("cwd          %s\n" % here, shown)
        self.assertRegex(shown, r"\nenv +\d+ variables")
        self.assertNotIn("from the caller", shown)

        # --cwd (relative to the caller's) and --env on top of the environment
        sub = os.path.join(here, "sub")
        os.mkdir(sub)
        p = subprocess.run([CLI, "run", "-f", "--cwd", "sub", "--env", "EXTRA=x=1", "--env",
                            "GALVANI_TEST_VAR=overridden", "--", "sh", "-c", script], cwd=here, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual((p.returncode, p.stdout), (0, "%s\nvar=overridden\nextra=x=1\ntoken=unset\n" %
                                                    os.path.realpath(sub)), p.stderr)
        # --clean-env: only the --env variables (and galvani's own)
        p = subprocess.run([CLI, "--json", "run", "-f", "--clean-env", "--env", "ONLY=1", "--", "sh", "-c",
                            "echo \"$GALVANI_TEST_VAR|$ONLY\""], cwd=here, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 0, p.stderr)
        jid = json.loads(p.stdout.splitlines()[0])["id"]
        self.assertEqual(self.ok("logs", str(jid)), "|1\n")
        self.assertEqual(self.job(jid)["spec"]["env"], {"ONLY": "1"})
        # a directory that does not exist: the job fails and says why
        p = self.cli("run", "-f", "--cwd", "/nonexistent-galvani-dir", "--", "true")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/nonexistent-galvani-dir", p.stderr.splitlines()[-1])

    def test_run_options(self):
        job = self.ok_json("run", "--timeout", "600", "--retries", "2", "--backoff", "0.5", "--priority", "7",
                           "--label", "team=cli", "--label", "tier=1", "--param", "lr=0.5", "--param", "on=true",
                           "--pause-mode", "cooperative", "--name", "t-opts", "--", "sleep", "3600")
        self.addCleanup(self.cli, "cancel", str(job["id"]))
        self.assertEqual((job["timeout"], job["max_retries"], job["priority"], job["pause_mode"]),
                         (600, 2, 7, "cooperative"))
        self.assertEqual(job["labels"], {"team": "cli", "tier": "1"})
        self.assertEqual(job["params"], {"lr": 0.5, "on": True})
        self.assertEqual(self.job(job["id"])["spec"]["retry_backoff"], 0.5)
        for args in (["--timeout", "0"], ["--timeout", "x"], ["--retries", "-1"], ["--retries", "101"],
                     ["--backoff", "-1"], ["--priority", "1.5"], ["--env", "NOEQ"], ["--env", "=v"],
                     ["--label", "novalue"], ["--cwd", ""], ["--timeout"]):
            p = self.cli("run", *args, "--", "true")
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))

    def test_rm_and_rerun(self):
        wait, release = self.gates()
        src = self.ok_json("run", "--name", "t-rerun", "--label", "k=v", "--param", "n=1", "--env", "RR=yes",
                           "--", "sh", "-c", 'echo "rr=$RR n=$(cat /dev/null)"; ' + wait(1))
        # rm refuses a job that has not finished
        p = self.cli("rm", str(src["id"]))
        self.assertEqual(p.returncode, 1)
        self.assertIn("galvani: ", p.stderr)
        self.ok_json("set", str(src["id"]), "n=2")
        release(1)
        self.wait_status(src["id"], "succeeded")
        # rerun: the same spec (env, labels, cwd) with the params as they are now
        p = self.cli("rerun", "--follow", str(src["id"]))
        self.assertEqual((p.returncode, p.stdout), (0, "rr=yes n=\n"), p.stderr)
        new = int(p.stderr.split()[1])
        self.assertGreater(new, src["id"])
        again = self.job(new)
        self.assertEqual((again["name"], again["labels"], again["params"]), ("t-rerun", {"k": "v"}, {"n": 2}))
        self.assertEqual(again["spec"]["env"], self.job(src["id"])["spec"]["env"])
        self.assertEqual(again["spec"]["cwd"], self.job(src["id"])["spec"]["cwd"])
        out = self.ok("rerun", str(new))
        self.assertRegex(out, r"^\d+\n$")
        self.wait_status(int(out), "succeeded")
        # rm: one or several; --json gets a line each; then they are gone
        self.assertEqual(self.ok("rm", str(src["id"])), "job %d removed\n" % src["id"])
        lines = self.ok("--json", "rm", str(new), out.strip()).splitlines()
        self.assertEqual([json.loads(l) for l in lines],
                         [{"id": new, "removed": True}, {"id": int(out), "removed": True}])
        for jid in (src["id"], new):
            p = self.cli("show", str(jid))
            self.assertEqual((p.returncode, p.stderr), (1, "galvani: no job %d\n" % jid))
        p = self.cli("rerun", str(src["id"]))
        self.assertEqual((p.returncode, p.stderr), (1, "galvani: no job %d\n" % src["id"]))
        for args in (["rm"], ["rm", "x"], ["rerun"], ["rerun", "1", "2"], ["rerun", "--bogus", "1"]):
            self.assertEqual(self.cli(*args).returncode, 2, args)

    def test_ls_filters(self):
        ids = [self.ok_json("run", "--name", "lsf-%s" % n, "--", "true")["id"] for n in ("a1", "a2", "b1")]
        for jid in ids:
            self.wait_status(jid, "succeeded")
        got = self.ok_json("ls", "--name", "lsf-a*")
        self.assertEqual([j["id"] for j in got["jobs"]], [ids[1], ids[0]])  # newest first
        self.assertEqual(got["total"], 2)
        got = self.ok_json("ls", "--name", "lsf-*", "--limit", "2")
        self.assertEqual(([j["id"] for j in got["jobs"]], got["total"]), ([ids[2], ids[1]], 3))
        self.assertEqual([j["id"] for j in self.ok_json("ls", "--limit=1")["jobs"]], [max(self.all_ids())])
        got = self.ok_json("ls", "--name", "lsf-?1", "--status", "succeeded,failed")
        self.assertEqual([j["id"] for j in got["jobs"]], [ids[2], ids[0]])
        self.assertEqual(self.ok_json("ls", "--name", "lsf-*", "--status", "running")["jobs"], [])
        out = self.ok("ls", "--name", "lsf-b*").splitlines()
        self.assertEqual(out[0].split(), ["ID", "NAME", "STATUS", "PROGRESS", "STARTED"])
        self.assertEqual(out[1].split()[:3], [str(ids[2]), "lsf-b1", "succeeded"])
        self.assertEqual(self.ok("ls", "--name", "nothing-matches-*"), "no matching jobs\n")
        out = self.ok("ls", "--name", "lsf-*", "--limit", "1").splitlines()
        self.assertEqual(out[-1], "(1 of 3 jobs shown)")

    def all_ids(self):
        return [j["id"] for j in self.ok_json("ls")["jobs"]]

    def test_nodes_and_a_jobs_node(self):
        # One galvanid lists itself alone (SQLite: id and state; a postgres
        # store adds its heartbeat, load and address), marked as the one
        # that answered.
        listed = self.ok_json("nodes")["nodes"]
        self.assertEqual(len(listed), 1, listed)
        me = listed[0]
        self.assertEqual((me["state"], me["self"]), ("up", True))
        lines = self.ok("nodes").splitlines()
        self.assertEqual(lines[0].split(), ["ID", "STATE", "HEARTBEAT", "RUNNING/MAX", "ADDRESS"])
        self.assertEqual(len(lines), 2, lines)
        row = lines[1].split()
        self.assertEqual(row[:3], ["*", me["id"], "up"])
        self.assertEqual(lines[1].index(me["id"]), lines[0].index("ID"), "the ID column lines up")
        if "heartbeat_age" in me:  # the postgres store
            self.assertRegex(row[3], r"^\d+\.\ds$")
            self.assertEqual(row[4:6], ["ago", "%d/%d" % (me["running"], me["max_running"])])
        else:  # one node: no heartbeat, but its load and address
            self.assertEqual(row[3:], ["-", "%d/%d" % (me["running"], me["max_running"]), me["address"]])
            self.assertEqual(me["address"], "127.0.0.1:%d" % self.d.port)
        p = self.cli("nodes", "n1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("nodes: unexpected argument 'n1'", p.stderr)
        self.assertTrue(self.ok("nodes", "--help").startswith("usage: galvani nodes"))

        # Every job names its node; show prints it.  ls has no NODE column on
        # a single galvanid (it would repeat one name).
        job = self.sleeper()
        running = self.wait_status(job["id"], "running")
        self.assertEqual((running["node"], running["at_most_once"]), (me["id"], False))
        fields = dict(re.match(r"^(\S+)\s+(.*)$", l).groups() for l in self.ok("show", str(job["id"])).splitlines()
                      if re.match(r"^\S+\s+\S", l))
        self.assertEqual(fields["node"], me["id"])
        self.assertEqual(fields["at_most_once"], "false")
        self.assertNotIn("NODE", self.ok("ls").splitlines()[0])

    def test_ls_node_column_in_a_cluster(self):
        # A cluster's answers, from a stand-in server (one galvanid on SQLite
        # is one node): the NODE column, "-" for a job no node has claimed,
        # and the nodes table with every field.
        jobs = [
            {"id": 3, "name": "q", "status": "queued", "progress": 0, "started_at": None, "node": None},
            {"id": 2, "name": "b", "status": "running", "progress": 40,
             "started_at": "2026-12-07T10:00:02.000Z", "node": "n2"},
            {"id": 1, "name": "a", "status": "running", "progress": 10,
             "started_at": "2026-12-07T10:00:01.000Z", "node": "n1"},
        ]
        nodes = [
            {"id": "n1", "epoch": 4, "state": "up", "address": "10.0.0.1:8000", "started_at": 1.0e9,
             "heartbeat_age": 1.3, "lease": 15.0, "max_running": 4, "running": 1, "self": True},
            {"id": "node-with-a-longer-id", "epoch": 2, "state": "lost", "address": None, "started_at": 1.0e9,
             "heartbeat_age": 125.0, "lease": 15.0, "max_running": 8, "running": 0, "self": False},
        ]
        answers = {"/jobs": {"jobs": jobs, "total": 3, "limit": 1000, "offset": 0}, "/nodes": {"nodes": nodes}}
        url = self.stand_in(answers)
        lines = self.cli_at(url, "ls").splitlines()
        self.assertEqual(lines[0].split(), ["ID", "NAME", "STATUS", "PROGRESS", "STARTED", "NODE"])
        self.assertEqual([l.split()[-1] for l in lines[1:]], ["-", "n2", "n1"])
        self.assertEqual(lines[1].split(), ["3", "q", "queued", "0%", "-", "-"])
        for l in lines[1:]:
            self.assertEqual(len(l) - len(l.split()[-1]), lines[0].index("NODE"), "NODE lines up: %r" % lines)

        lines = self.cli_at(url, "nodes").splitlines()
        self.assertEqual(lines[0].split(), ["ID", "STATE", "HEARTBEAT", "RUNNING/MAX", "ADDRESS"])
        self.assertEqual(lines[1].split(), ["*", "n1", "up", "1.3s", "ago", "1/4", "10.0.0.1:8000"])
        self.assertEqual(lines[2].split(), ["node-with-a-longer-id", "lost", "2m05s", "ago", "0/8", "-"])
        for col in ("STATE", "HEARTBEAT", "RUNNING/MAX", "ADDRESS"):
            at = lines[0].index(col)
            self.assertTrue(all(l[at - 1] == " " and l[at] != " " for l in lines[1:]), "%s lines up: %r" % (col, lines))
        self.assertEqual(json.loads(self.cli_at(url, "--json", "nodes")), answers["/nodes"])

        # One node: no NODE column, even where the jobs name none.
        answers["/nodes"] = {"nodes": nodes[:1]}
        self.assertEqual(self.cli_at(url, "ls").splitlines()[0].split(), ["ID", "NAME", "STATUS", "PROGRESS", "STARTED"])
        # A galvanid without /nodes (older): the column when the jobs name more than one node.
        del answers["/nodes"]
        self.assertEqual(self.cli_at(url, "ls").splitlines()[0].split()[-1], "NODE")
        answers["/jobs"]["jobs"] = jobs[:2]
        jobs[1]["node"] = None
        self.assertEqual(self.cli_at(url, "ls").splitlines()[0].split()[-1], "STARTED")

    def cli_at(self, url, *args):
        p = self.cli(*args, server=url)
        self.assertEqual((p.returncode, p.stderr), (0, ""), "galvani %s" % " ".join(args))
        return p.stdout

    def stand_in(self, answers):
        """An HTTP server on a loopback port that answers GET PATH (the query
        ignored) with answers[PATH] as JSON, and 404 otherwise; its URL."""
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = answers.get(self.path.split("?")[0])
                data = json.dumps(body if body is not None else
                                  {"error": {"code": "not_found", "message": "no route"}}).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return "http://127.0.0.1:%d" % srv.server_address[1]

    def test_json_errors(self):
        # the daemon's errors, as it sent them, with the HTTP status
        p = self.cli("--json", "show", "987654")
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertEqual(json.loads(p.stderr), {"error": {"code": "not_found", "message": "no job 987654",
                                                          "status": 404}})
        # the CLI's own: usage (exit 2), unreachable (exit 1)
        for args in (["ls", "--status", "bogus", "--json"], ["--json", "frob"], ["--json", "--bogus", "ls"],
                     ["--json", "run"], ["--json"]):
            p = self.cli(*args)
            self.assertEqual((p.returncode, p.stdout), (2, ""), args)
            err = json.loads(p.stderr)
            self.assertEqual(err["error"]["code"], "usage", args)
            self.assertTrue(err["error"]["message"], args)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        s.close()
        for args in (["ls"], ["watch"], ["logs", "-f", "1"]):
            p = self.cli("--json", *args, server=url)
            self.assertEqual((p.returncode, p.stdout), (1, ""), args)
            self.assertEqual(json.loads(p.stderr)["error"]["code"], "unreachable", args)

    def watch_screen(self, cols):
        """galvani watch at `cols` columns: returns the session once a frame
        shows the test's jobs."""
        s = PtySession(["watch"], self.d.url, cols)
        self.addCleanup(s.close)
        s.until(lambda t: all(("\n%d " % j) in ANSI.sub("", t) for j in self.wide_ids),
                "a frame with jobs %r" % (self.wide_ids,))
        return s

    def test_watch_widths(self):
        long_name = "an-uncommonly-long-job-name-for-narrow-terminals"
        a = self.sleeper("--name", long_name)["id"]
        b = self.ok_json("run", "--name", "w-msg", "--", "sh", "-c",
                         "echo ::progress 40; echo '::status copying the second half of the files'; sleep 3600")
        self.addCleanup(self.cli, "cancel", str(b["id"]))
        self.wide_ids = (a, b["id"])
        wait_for(lambda: self.job(b["id"])["message"], DEADLINE, what="the ::status message")
        for cols in (40, 60, 80, 200):
            s = self.watch_screen(cols)
            s.until(lambda t: " 40% " in ANSI.sub("", t), "the 40 %% job at %d columns" % cols)
            self.assertEqual(s.lflag() & (termios.ICANON | termios.ECHO), 0, "raw mode while watching")
            # q quits; Ctrl-C (at 200 columns) too, as a SIGINT: the mode is restored either way
            s.send(b"\x03" if cols == 200 else b"q")
            rc, lflag, err = s.finish()
            self.assertEqual((rc, err), (-signal.SIGINT if cols == 200 else 0, ""), cols)
            self.assertEqual(lflag & (termios.ICANON | termios.ECHO), termios.ICANON | termios.ECHO,
                             "the terminal's mode is restored")
            text = ANSI.sub("", s.text())
            lines = [l.strip("\r") for l in text.split("\n")]
            for l in lines:
                self.assertLess(len(l), cols, "a line wider than %d columns: %r" % (cols, l))
            self.assertTrue(any(l.startswith("jobs: ") and " running" in l for l in lines), (cols, lines))
            row_a = [l for l in lines if l.startswith("%d " % a)][-1]
            row_b = [l for l in lines if l.startswith("%d " % b["id"])][-1]
            self.assertIn("running", row_a)
            if cols < 100:
                self.assertIn("\u2026", row_a)  # the long name is cut, with an ellipsis
                self.assertNotIn(long_name, row_a)
            else:
                self.assertIn(long_name[:35], row_a)
            self.assertEqual("[" in row_b, cols >= 60, (cols, row_b))  # no bar at 40 columns
            self.assertIn(" 40% running", row_b)
            if cols >= 80:
                self.assertIn("copying the", row_b)  # the ::status message
            if cols == 200:
                self.assertIn("copying the second half of the files", row_b)

    def test_watch_reconnects(self):
        tmp = tempfile.mkdtemp(prefix="reconnect-", dir=self.tmp.name)
        d = FixedPortDaemon(tmp)
        d.fixed = d.port
        self.addCleanup(end_leftover_jobs, os.path.join(tmp, "galvani.db.run"))
        self.addCleanup(lambda: d.proc.poll() is None and d.stop())
        env = dict(os.environ, GALVANI_URL=d.url)
        job = json.loads(subprocess.run([CLI, "--json", "run", "--name", "w-recon", "--", "sleep", "3600"],
                                        env=env, capture_output=True, text=True, timeout=DEADLINE,
                                        check=True).stdout)
        self.addCleanup(subprocess.run, [CLI, "cancel", str(job["id"])], env=env, capture_output=True,
                        timeout=DEADLINE)
        s = PtySession(["watch"], d.url, 80)
        self.addCleanup(s.close)
        row = re.compile(r"(^|\n)%d +w-recon " % job["id"])
        s.until(lambda t: row.search(ANSI.sub("", t)), "the job's row")
        self.assertEqual(d.stop(), 0)  # SIGTERM: the job lives on under its supervisor
        t = s.until(lambda t: "reconnecting" in t, "the reconnecting line")
        self.assertTrue(row.search(ANSI.sub("", t).split("reconnecting")[0].rsplit("jobs:", 1)[-1]), t)  # the frame stays
        self.assertNotIn("Failed to connect", t)  # no raw libcurl error
        mark = len(s.text())
        d.start()
        self.assertEqual(d.port, d.fixed)
        s.until(lambda t: row.search(ANSI.sub("", t[mark:])) and "running" in t[mark:], "the frame after the restart")
        s.send(b"q")
        rc, lflag, err = s.finish()
        self.assertEqual((rc, err), (0, ""))
        # the last frame has no reconnecting line any more
        last = ANSI.sub("", s.text()[mark:].rsplit("jobs: ", 1)[-1])
        self.assertNotIn("reconnecting", last)

        # piped: one line on stderr, then the lines go on
        w = subprocess.Popen([CLI, "watch", str(job["id"])], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: w.poll() is None and w.kill())
        out = Lines(w.stdout)
        out.until(lambda l: l.startswith("job %d w-recon: running" % job["id"]), "the running line")
        self.assertEqual(d.stop(), 0)
        err = Lines(w.stderr)
        self.assertIn("reconnecting", err.until(lambda l: "reconnecting" in l, "the reconnecting line"))
        d.start()
        err.until(lambda l: "reconnected" in l, "the reconnected line")
        subprocess.run([CLI, "cancel", str(job["id"])], env=env, capture_output=True, timeout=DEADLINE,
                       check=True)
        out.until(lambda l: l.startswith("job %d w-recon: cancelled" % job["id"]), "the verdict")
        self.assertEqual(w.wait(DEADLINE), 130)
        out.rest()
        err.rest()
        w.stdout.close()
        w.stderr.close()

        # run --follow waits a restart out too, and misses none of the output
        wait, release = self.gates()
        f = subprocess.Popen([CLI, "run", "--follow", "--", "sh", "-c", "echo before; %s; echo after" % wait(1)],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.addCleanup(lambda: f.poll() is None and f.kill())
        out, err = Lines(f.stdout), Lines(f.stderr)
        out.until(lambda l: l == "before\n", "the first line")
        self.assertEqual(d.stop(), 0)
        err.until(lambda l: "reconnecting" in l, "the reconnecting line")
        release(1)  # the job goes on and ends while galvanid is away
        d.start()
        self.assertEqual(out.rest(), ["before\n", "after\n"])
        self.assertEqual(f.wait(DEADLINE), 0)
        self.assertRegex(err.rest()[-1], r"^job \d+ sh: succeeded \(exit 0\) after ")
        f.stdout.close()
        f.stderr.close()

    def test_logs_follow(self):
        # The job writes its first line, then waits for the test: the first
        # line is certainly printed while the job still runs (it follows,
        # not dumps), however slow the machine.
        wait, release = self.gates()
        script = "echo line 1; %s; for i in 2 3 4 5; do echo line $i; sleep 0.05; done; echo done >&2" % wait(1)
        jid = self.ok_json("run", "--name", "t-logs-f", "--", "sh", "-c", script)["id"]
        p = self.popen("logs", "-f", str(jid))
        out = Lines(p.stdout)
        first = out.until(lambda l: True, "the first line")
        self.assertEqual(first, "line 1\n")
        self.assertEqual(self.job(jid)["status"], "running")
        release(1)
        rest = "".join(out.rest()[1:])
        self.assertEqual(p.wait(DEADLINE), 0)
        stderr = p.stderr.read()
        self.assertEqual(first + rest, "line 1\nline 2\nline 3\nline 4\nline 5\ndone\n")
        self.assertEqual(stderr, "")
        self.assertEqual(self.job(jid)["status"], "succeeded")
        # a finished job: the whole log at once, and the same with --follow
        self.assertEqual(self.ok("logs", "--follow", str(jid)), first + rest)
        # errors
        p = self.cli("logs", "-f", "987654")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (1, "", "galvani: no job 987654\n"))
        p = self.cli("logs", "-x", "1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("logs: unknown option '-x'", p.stderr)
        self.assertEqual(self.cli("logs", "-f").returncode, 2)


class CliTokenTest(unittest.TestCase):
    """The CLI against a galvanid that requires a token (and has a
    read-only one): --token, GALVANI_TOKEN, and clear refusals."""

    FULL = "cli-token-5e1f0a9b"
    READ = "cli-read-7c2d4e6f"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="galvani-cli-token-")
        cls.d = Daemon(cls.tmp.name, "--token", cls.FULL, "--read-token", cls.READ)

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        # Jobs outlive galvanid under their supervisors: end what is left.
        end_leftover_jobs(os.path.join(cls.tmp.name, "galvani.db.run"))
        cls.tmp.cleanup()
        assert rc == 0, "galvanid exited with %s:\n%s" % (rc, "".join(cls.d.lines)[-4000:])
        assert cls.FULL not in "".join(cls.d.lines)

    def cli(self, *args, token=None):
        env = dict(os.environ, GALVANI_URL=self.d.url)
        env.pop("GALVANI_TOKEN", None)
        if token:
            env["GALVANI_TOKEN"] = token
        return subprocess.run([CLI] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=DEADLINE, env=env)

    def test_token(self):
        # none: refused, and told what to do
        p = self.cli("ls")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr.splitlines()[1],
                         "galvani: this galvanid needs a token: pass --token TOKEN or set GALVANI_TOKEN")
        self.assertIn("this galvanid requires a token", p.stderr.splitlines()[0])
        # a wrong one
        p = self.cli("--token", "wrong", "ls")
        self.assertEqual((p.returncode, p.stderr.splitlines()),
                         (1, ["galvani: the token is not valid for this galvanid",
                              "galvani: galvanid refused the token given (--token or GALVANI_TOKEN)"]))
        # --token (anywhere among the shared options), --token=, GALVANI_TOKEN
        p = self.cli("--json", "run", "--token", self.FULL, "--name", "tok", "--", "sleep", "3600")
        self.assertEqual(p.returncode, 0, p.stderr)
        jid = json.loads(p.stdout)["id"]
        p = self.cli("show", str(jid), "--token=" + self.FULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("name         tok\n", p.stdout)
        p = self.cli("--json", "ls", token=self.FULL)
        self.assertIn(jid, [j["id"] for j in json.loads(p.stdout)["jobs"]])
        # the read-only token: looks, cannot touch
        p = self.cli("pause", str(jid), token=self.READ)
        self.assertEqual(p.returncode, 1)
        self.assertIn("galvani: this token is read-only", p.stderr)
        self.assertEqual(self.cli("--json", "show", str(jid), token=self.READ).returncode, 0)
        # streams carry it too: watch follows the job to its end
        wait_for(lambda: json.loads(self.cli("--json", "show", str(jid), token=self.FULL).stdout)["status"] == "running",
                 DEADLINE, what="job %d to run" % jid)
        w = subprocess.Popen([CLI, "watch", str(jid)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, GALVANI_URL=self.d.url, GALVANI_TOKEN=self.READ))
        self.assertEqual(w.stdout.readline(), "job %d tok: running 0%%\n" % jid)
        p = self.cli("cancel", str(jid), token=self.FULL)
        self.assertEqual((p.returncode, p.stdout), (0, "job %d: cancelled (0%%)\n" % jid))
        out, err = w.communicate(timeout=DEADLINE)
        self.assertEqual((w.returncode, err), (130, ""))
        self.assertRegex(out, r"^job %d tok: cancelled\b.* after [0-9.hms]+\n$" % jid)
        p = self.cli("watch", str(jid))
        self.assertEqual(p.returncode, 1)
        self.assertIn("this galvanid needs a token", p.stderr)

    def test_env_hidden_from_read_only_token(self):
        env = dict(os.environ, GALVANI_URL=self.d.url, GALVANI_TOKEN=self.FULL, API_KEY="hunter2-secret")
        p = subprocess.run([CLI, "--json", "run", "--", "true"], env=env, capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(p.returncode, 0, p.stderr)
        jid = json.loads(p.stdout)["id"]
        # the full token sees the values (rerun needs them); the CLI's token is not among them
        full = json.loads(self.cli("--json", "show", str(jid), token=self.FULL).stdout)
        self.assertEqual(full["spec"]["env"]["API_KEY"], "hunter2-secret")
        self.assertNotIn("GALVANI_TOKEN", full["spec"]["env"])
        # the read-only token sees the names only, by the header or the query
        p = self.cli("--json", "show", str(jid), token=self.READ)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("hunter2", p.stdout)
        ro = json.loads(p.stdout)
        self.assertIn("API_KEY", ro["spec"]["env"])
        self.assertEqual(set(ro["spec"]["env"].values()), {None})
        self.assertEqual(ro["spec"]["cwd"], full["spec"]["cwd"])
        status, _, body = self.d.request("GET", "/jobs/%d?token=%s" % (jid, self.READ))
        self.assertEqual(status, 200)
        self.assertEqual(body["spec"]["env"]["API_KEY"], None)
        # lists and streams never carried the spec
        p = self.cli("--json", "ls", token=self.READ)
        self.assertNotIn("hunter2", p.stdout)
        self.assertNotIn('"spec"', p.stdout)
        # and the daemon's log never has it
        self.assertNotIn("hunter2", self.d.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
