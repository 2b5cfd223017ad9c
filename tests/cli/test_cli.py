#!/usr/bin/python3
"""End-to-end tests of the galvani CLI against the real galvanid.

One galvanid runs on an ephemeral loopback port with a fresh SQLite file for
the whole class; every test runs the real `galvani` binary with subprocess,
its output piped (so never a terminal, except in the one test that provides a
pseudo-terminal on purpose).

Run with GALVANID=/path/to/galvanid GALVANI_CLI=/path/to/galvani (CTest sets
both).
"""
import json
import os
import pty
import queue
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
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
                     ["pause", "1", "x"], ["logs"], ["start", "1"], ["--server"]):
            p = self.cli(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertEqual(p.stdout, "", args)
            self.assertIn("galvani", p.stderr, args)
        self.assertEqual(self.ok_json("ls")["total"], before, "a usage error sent a request")

    def test_help_and_version(self):
        out = self.ok("--help")
        self.assertTrue(out.startswith("usage: galvani "))
        for cmd in ("run", "ls", "show", "pause", "resume", "cancel", "set", "logs", "start", "watch"):
            self.assertRegex(out, r"\n  %s\b" % cmd)
            sub = self.ok(cmd, "--help")
            self.assertTrue(sub.startswith("usage: galvani %s" % cmd), sub)
        self.assertIn("--pause-mode", self.ok("run", "--help"))
        self.assertIn("--follow", self.ok("run", "--help"))
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
        # The job waits at 25, 50 and 75 % until the follower has shown the
        # state: every intermediate line is certain, not a matter of timing.
        script, release = self.steps("; exit 3")
        p = self.popen("run", "--follow", "--name", "t-follow", "--", "sh", "-c", script)
        out = Lines(p.stdout)
        jid = int(out.until(lambda l: True, "the new job's id"))
        for i in (1, 2, 3):
            out.until(lambda l: l == "job %d t-follow: running %d%%\n" % (jid, 25 * i), "%d %%" % (25 * i))
            release(i)
        lines = [l.rstrip("\n") for l in out.rest()]
        self.assertEqual(p.wait(DEADLINE), 3, p.stderr.read())  # the job's exit status
        self.assertEqual(lines[-1], "job %d t-follow: failed 100%%" % jid)
        self.assertIn("job %d t-follow: running 50%%" % jid, lines)
        # Plain mode prints a line only when status or progress changed.
        self.assertEqual(len(lines[1:]), len(set(lines[1:])), lines)

        # --json: run's answer, the snapshot, the job's changes to its end.
        # The job ends only after the snapshot arrived, so there are changes.
        wait, release = self.gates()
        p = self.popen("--json", "run", "--follow", "--", "sh", "-c", "echo ::progress 50; " + wait(1))
        out = Lines(p.stdout)
        out.until(lambda l: json.loads(l).get("type") == "snapshot", "the snapshot")
        release(1)
        lines = out.rest()
        self.assertEqual(p.wait(DEADLINE), 0, p.stderr.read())
        msgs = [json.loads(l) for l in lines]
        self.assertIn(msgs[0]["status"], ("queued", "running"))  # run's answer: the new job
        self.assertEqual(msgs[1]["type"], "snapshot")
        self.assertEqual([j["id"] for j in msgs[1]["jobs"]], [msgs[0]["id"]])
        self.assertEqual(msgs[-1]["type"], "job")
        self.assertEqual((msgs[-1]["job"]["status"], msgs[-1]["job"]["exit_code"]), ("succeeded", 0))

    def test_watch_ids(self):
        a = self.ok_json("run", "--name", "w-a", "--", "sh", "-c",
                         "for i in 1 2 3 4; do echo ::progress $((i*25)); sleep 0.1; done")["id"]
        b = self.ok_json("run", "--name", "w-b", "--", "sh", "-c", "sleep 0.3")["id"]
        p = self.cli("watch", str(a), str(b))
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertIn("job %d w-a: succeeded 100%%" % a, lines)
        self.assertIn("job %d w-b: succeeded 100%%" % b, lines)
        self.assertEqual(self.job(a)["status"], "succeeded")
        # An already finished job: the snapshot says so, watch ends at once.
        self.assertEqual(self.ok("watch", str(a)), "job %d w-a: succeeded 100%%\n" % a)
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
        out.until(lambda l: l == "job %d w-all: succeeded 100%%\n" % jid, "the job to succeed")
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
        # Redrawn in place: each frame moves the cursor up over the last one.
        frames = out.split("\x1b[1A")
        self.assertGreaterEqual(len(frames), 3, out)
        self.assertIn("[########################] 100%  \x1b[32msucceeded", frames[-1])
        self.assertIn("%-5d w-tty" % jid, frames[-1])
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
        row = re.compile(r"^%-5d w-tmux +\[([#-]{24})\] +(\d+)%%  (\w+)" % jid)
        seen = []
        for screen in screens:
            rows = [m for m in map(row.match, screen.splitlines()) if m]
            if not rows and not seen:
                continue  # before the first draw
            # exactly one line for the job on every screen, always the first
            self.assertEqual(len(rows), 1, screen)
            self.assertTrue(row.match(screen.splitlines()[0]), screen)
            state = (int(rows[0].group(2)), rows[0].group(3), rows[0].group(1).count("#"))
            if not seen or seen[-1] != state:
                seen.append(state)
        self.assertEqual(seen[-1], (100, "succeeded", 24))
        percents = [p for p, _, _ in seen]
        self.assertEqual(percents, sorted(percents), seen)  # redrawn forward, never backward
        self.assertGreaterEqual(len(set(percents)), 3, seen)  # at least two redraws seen between
        for p, _, bar in seen:
            self.assertEqual(bar, int(p * 24 / 100 + 0.5))

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
        self.assertEqual([j["id"] for j in json.loads(p.stdout)["jobs"]], [jid])
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
        self.assertEqual((w.returncode, out, err), (0, "job %d tok: cancelled 0%%\n" % jid, ""))
        p = self.cli("watch", str(jid))
        self.assertEqual(p.returncode, 1)
        self.assertIn("this galvanid needs a token", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
