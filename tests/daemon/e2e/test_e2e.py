#!/usr/bin/python3
"""End-to-end tests of galvanid.

The real daemon runs on an ephemeral loopback port with a fresh SQLite file,
and is driven by real clients: urllib for HTTP, python3-websockets for the
WebSocket streams, raw sockets for SSE and hostile input.  Processes are real
too: pause is checked in /proc, cancel by looking for the grandchildren.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import asyncio
import fcntl
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import websockets

GALVANID = os.environ.get("GALVANID", "galvanid")
DEADLINE = 30.0  # seconds any single wait may take before the test fails (a busy machine is slow, not wrong)


def wait_for(pred, timeout=DEADLINE, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, T, Z...), or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(")") + 2]


def read(path):
    with open(path) as f:
        return f.read()


def group_stopped(pgid):
    """Every process of the group is stopped.  A shell caught inside vfork()
    while its child was stopped shows 'D' rather than 'T': accept that for
    the leader as long as something in the group is really stopped."""
    states = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return bool(states) and "T" in states and all(s in ("T", "t", "D", "Z") for s in states)


def alive(pid):
    state = proc_state(pid)
    return state is not None and state != "Z"


def start_ticks(pid):
    """Field 22 of /proc/PID/stat, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(data[data.rindex(")") + 2:].split()[19])


def end_leftover_jobs(run_root, timeout=DEADLINE):
    """Jobs outlive galvanid (their galvani-shim keeps them): kill what a test
    left running under run_root (each run dir's pid file: "PID TICKS"), then
    wait until every shim has recorded the exit and gone (its run dir's lock
    is free), so that the temp dir can be removed."""
    if not os.path.isdir(run_root):
        return
    dirs = [os.path.join(run_root, d) for d in os.listdir(run_root)]
    for d in dirs:
        try:
            pid, ticks = (int(x) for x in read(os.path.join(d, "pid")).split())
        except (OSError, ValueError):
            continue
        if start_ticks(pid) == ticks:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def shims_gone():
        for d in dirs:
            try:
                fd = os.open(os.path.join(d, "lock"), os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            finally:
                os.close(fd)
        return True

    wait_for(shims_gone, timeout, what="the job supervisors to finish")


class Daemon:
    """One galvanid process on an ephemeral port."""

    host = "127.0.0.1"  # where its requests go

    def __init__(self, workdir, *args):
        self.workdir = workdir
        self.args = list(args)
        self.lines = []
        self.start()

    def command(self):
        return [GALVANID, "--listen", "127.0.0.1:0", "--db", os.path.join(self.workdir, "galvani.db"),
                "--log-level", "debug"] + self.args

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, cwd=self.workdir)
        port = []
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"galvanid\.listening addr=\S+:(\d+)", line)
                if m and not port:
                    port.append(int(m.group(1)))
                    ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        if not ready.wait(DEADLINE) or not port:
            self.proc.kill()
            raise AssertionError("galvanid did not start:\n" + "".join(self.lines))
        self.port = port[0]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("galvanid did not stop on %s" % sig)
        self.pump.join(DEADLINE)
        self.proc.stderr.close()
        return rc

    def log(self):
        return "".join(self.lines)

    def wait_log(self, text):
        """Until galvanid's log has `text`: a thread reads its stderr, so a
        line it has written may not be in self.lines yet (on a busy machine,
        for a while)."""
        return wait_for(lambda: text in self.log(), what="%r in galvanid's log" % text)

    def request(self, method, path, body=None, ctype="application/json", raw=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=DEADLINE)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if data is not None and ctype:
            hdrs["Content-Type"] = ctype
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        text = payload.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return resp.status, dict(resp.getheaders()), parsed

    def create(self, **spec):
        status, _, job = self.request("POST", "/jobs", spec)
        assert status == 201, (status, job)
        return job

    def job(self, job_id):
        status, _, job = self.request("GET", "/jobs/%d" % job_id)
        assert status == 200, (status, job)
        return job

    def wait_status(self, job_id, *statuses):
        # A process job is "running" once that is committed, and has its pid
        # a moment later, when its supervisor answers: wait for both.
        def ready(j):
            return j["status"] in statuses and (j["status"] != "running" or j["kind"] != "process"
                                                 or j["pid"] is not None)
        return wait_for(lambda: (lambda j: j if ready(j) else None)(self.job(job_id)),
                        what="job %d to be %s" % (job_id, "/".join(statuses)))


class DaemonTest(unittest.TestCase):
    extra_args = ()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-e2e-")
        self.dir = self.tmp.name
        self.d = Daemon(self.dir, *self.extra_args)

    def tearDown(self):
        if self.d.proc.poll() is None:
            rc = self.d.stop()
            # A sanitizer build reports leaks through the exit status.
            self.assertEqual(rc, 0, "galvanid exited with %s:\n%s" % (rc, self.d.log()[-4000:]))
        end_leftover_jobs(os.path.join(self.dir, "galvani.db.run"))
        self.tmp.cleanup()

    def script(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path


class SeedSession(DaemonTest):
    """The seed's session, verbatim: curl -X POST /start, a WebSocket on /ws, /pause, /resume, /cancel."""

    def test_seed_session(self):
        async def run():
            async with websockets.connect("ws://127.0.0.1:%d/ws" % self.d.port) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                self.assertIn("status", first)
                self.assertIn("progress", first)
                status, _, job = self.d.request("POST", "/start", raw=b"", ctype=None)
                self.assertEqual(status, 201, job)
                frames = []

                async def until(pred):
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                        frames.append(frame)
                        if pred(frame):
                            return frame

                await until(lambda f: f["status"] == "running" and f["progress"] >= 3)
                status, _, paused = self.d.request("POST", "/pause", raw=b"", ctype=None)
                self.assertEqual((status, paused["status"]), (200, "paused"))
                held = (await until(lambda f: f["status"] == "paused"))["progress"]
                await asyncio.sleep(0.5)  # five demo steps: none may happen
                self.assertEqual(self.d.job(job["id"])["progress"], held)
                status, _, resumed = self.d.request("POST", "/resume", raw=b"", ctype=None)
                self.assertEqual((status, resumed["status"]), (200, "running"))
                await until(lambda f: f["status"] == "running" and f["progress"] > held)
                status, _, cancelled = self.d.request("POST", "/cancel", raw=b"", ctype=None)
                self.assertEqual((status, cancelled["status"]), (200, "cancelled"))
                await until(lambda f: f["status"] == "cancelled")
                progress = [f["progress"] for f in frames if f["status"] == "running"]
                self.assertEqual(progress, sorted(progress), "progress never goes back")
        asyncio.run(run())

    def test_seed_endpoints_without_demo(self):
        status, _, body = self.d.request("POST", "/pause", raw=b"", ctype=None)
        self.assertEqual(status, 404, body)
        self.assertIn("error", body)


class ProcessJobs(DaemonTest):
    def test_progress_pause_resume_cancel_real_process(self):
        counter = os.path.join(self.dir, "counter")
        script = self.script("count.sh", """#!/bin/sh
i=0
while [ $i -lt 100000 ]; do
  i=$((i+1)); echo $i > %s; echo "::progress $i/100000"; sleep 0.01
done
""" % counter)
        job = self.d.create(command=[script], name="count")
        job = wait_for(lambda: (lambda j: j if j["current"] >= 5 else None)(self.d.job(job["id"])),
                       what="progress")
        pid = job["pid"]
        self.assertTrue(alive(pid))
        status, _, paused = self.d.request("POST", "/jobs/%d/pause" % job["id"])
        self.assertEqual((status, paused["status"]), (200, "paused"))
        wait_for(lambda: group_stopped(pid), what="the process group to be stopped in /proc")
        before = read(counter)
        time.sleep(0.4)
        self.assertEqual(read(counter), before, "a paused job made progress")
        self.assertTrue(group_stopped(pid))
        status, _, resumed = self.d.request("POST", "/jobs/%d/resume" % job["id"])
        self.assertEqual((status, resumed["status"]), (200, "running"))
        wait_for(lambda: read(counter) != before, what="progress after resume")
        status, _, cancelled = self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual((status, cancelled["status"]), (200, "cancelled"))
        wait_for(lambda: not alive(pid), what="the process to die")
        final = self.d.wait_status(job["id"], "cancelled")
        self.assertIsNotNone(final["finished_at"])

    def test_cancel_kills_grandchildren(self):
        pidfile = os.path.join(self.dir, "grandchild")
        job = self.d.create(command="sleep 1000 & echo $! > %s; wait" % pidfile, shell=True)
        wait_for(lambda: os.path.exists(pidfile) and read(pidfile).strip(), what="grandchild pid")
        grandchild = int(read(pidfile))
        self.assertTrue(alive(grandchild))
        status, _, _ = self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual(status, 200)
        wait_for(lambda: not alive(grandchild), what="the grandchild to die")

    def test_exit_codes_and_log(self):
        ok = self.d.create(command=["sh", "-c", "echo hello; echo oops >&2; exit 0"], env={"PATH": "/usr/bin:/bin"})
        bad = self.d.create(command=["sh", "-c", "exit 7"], env={"PATH": "/usr/bin:/bin"})
        done = self.d.wait_status(ok["id"], "succeeded")
        self.assertEqual(done["exit_code"], 0)
        self.assertEqual(done["progress"], 100)
        failed = self.d.wait_status(bad["id"], "failed")
        self.assertEqual(failed["exit_code"], 7)
        self.assertIn("7", failed["error"])
        status, headers, text = self.d.request("GET", "/jobs/%d/log" % ok["id"])
        self.assertEqual(status, 200)
        self.assertIn("hello", text)
        self.assertIn("oops", text)

    def test_no_such_command(self):
        # The spawn does not block galvanid, but the 201 of a job that starts
        # at once waits for its supervisor's answer: here, the refusal, in the
        # runner's words.
        job = self.d.create(command=["/nonexistent/program"])
        self.assertEqual((job["status"], job["error"]), ("failed", "no such file: /nonexistent/program"))
        failed = self.d.wait_status(job["id"], "failed")
        self.assertEqual(failed["error"], "no such file: /nonexistent/program")
        running = self.d.create(command=["sleep", "5"], env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(running["status"], "running")
        self.assertIsNotNone(running["pid"])  # known when the 201 is sent
        self.d.request("POST", "/jobs/%d/cancel" % running["id"])

    def test_timeout_cancels(self):
        # Not "wait until running, then until failed": on a busy machine the
        # half second can pass between two polls.  The failed job keeps its pid.
        job = self.d.create(command=["sleep", "3600"], timeout=0.5, env={"PATH": "/usr/bin:/bin"})
        failed = self.d.wait_status(job["id"], "failed")
        self.assertIn("timed out", failed["error"])
        self.assertIsNotNone(failed["pid"])
        wait_for(lambda: not alive(failed["pid"]), what="the timed-out process to die")

    def test_list_by_name_glob(self):
        for name in ("build-1", "build-2", "test-1"):
            self.d.create(command=["true"], env={"PATH": "/usr/bin:/bin"}, name=name)
        names = lambda q: sorted(j["name"] for j in self.d.request("GET", "/jobs?" + q)[2]["jobs"])
        self.assertEqual(names("name=build-*"), ["build-1", "build-2"])
        self.assertEqual(names("name=b%3Fild-1"), ["build-1"])  # '?' as a glob, percent-encoded
        self.assertEqual(names("name=%5Bbt%5D*-1"), ["build-1", "test-1"])
        self.assertEqual(self.d.request("GET", "/jobs?name=nothing*")[2]["total"], 0)
        status, _, body = self.d.request("GET", "/jobs?name=")
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_query"))

    def test_retries_with_backoff(self):
        runs = os.path.join(self.dir, "runs")
        job = self.d.create(command=["sh", "-c", "echo run >> %s; exit 3" % runs], max_retries=2,
                            retry_backoff=0.05, env={"PATH": "/usr/bin:/bin"})
        failed = self.d.wait_status(job["id"], "failed")
        self.assertEqual(failed["attempts"], 3)
        with open(runs) as f:
            self.assertEqual(f.read().count("run"), 3)
        # Succeeding on a retry leaves no error behind (the attempt that
        # failed said "retrying in ..." while it waited).
        flaky = os.path.join(self.dir, "flaky")
        job = self.d.create(command=["sh", "-c", "[ -e %s ] && exit 0; touch %s; exit 4" % (flaky, flaky)],
                            max_retries=1, retry_backoff=0.05, env={"PATH": "/usr/bin:/bin"})
        done = self.d.wait_status(job["id"], "succeeded")
        self.assertEqual((done["attempts"], done["error"]), (2, None))

    def test_params_and_metrics_and_status(self):
        script = self.script("report.sh", """#!/bin/sh
echo "::status warming up"
echo "::metric loss 0.5"
echo "::metric loss 0.25"
echo "::progress 3/4"
echo "::bogus line"
sleep 3600
""")
        job = self.d.create(command=[script], params={"lr": 0.1, "epochs": 3})
        seen = wait_for(lambda: (lambda j: j if j["metrics"].get("loss") == 0.25 and j["current"] == 3 else None)(
            self.d.job(job["id"])), what="metrics")
        self.assertEqual(seen["message"], "warming up")
        self.assertEqual(seen["progress"], 75)
        status, _, patched = self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.2, "epochs": None})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["params"], {"lr": 0.2})
        self.d.wait_log("job.protocol")  # the malformed line was logged, not fatal
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.d.wait_status(job["id"], "cancelled")

    def test_cooperative_pause_and_params(self):
        acks = os.path.join(self.dir, "acks")
        script = self.script("coop.sh", """#!/bin/sh
echo "::progress 1" >&$GALVANI_CONTROL_FD
while read -r line <&$GALVANI_CONTROL_FD; do
  echo "$line" >> %s
  case "$line" in
    pause) echo "ack pause" >&$GALVANI_CONTROL_FD ;;
    resume) echo "ack resume" >&$GALVANI_CONTROL_FD ;;
    cancel) exit 0 ;;
  esac
done
""" % acks)
        job = self.d.create(command=[script], pause_mode="cooperative", env={"PATH": "/usr/bin:/bin"})
        wait_for(lambda: self.d.job(job["id"])["current"] == 1, what="first progress")
        self.assertEqual(self.d.request("POST", "/jobs/%d/pause" % job["id"])[0], 200)
        self.assertEqual(self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"k": 1})[0], 200)
        self.assertEqual(self.d.request("POST", "/jobs/%d/resume" % job["id"])[0], 200)
        wait_for(lambda: os.path.exists(acks) and "resume" in read(acks), what="commands")
        lines = read(acks).splitlines()
        self.assertEqual(lines[0], "pause")
        self.assertTrue(lines[1].startswith("params 1 ") and json.loads(lines[1][9:]) == {"k": 1}, lines)
        self.assertEqual(lines[2], "resume")
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.d.wait_status(job["id"], "cancelled")


class Limits(DaemonTest):
    extra_args = ("--max-running", "1")

    def test_max_running_queues_by_priority(self):
        # a holds the only slot until the test lets it go (the file "go"), so
        # b and c are certainly still queued when c's priority is given --
        # however slow the machine, not because a sleeps long enough.
        go = os.path.join(self.dir, "go")
        hold = "while [ ! -e %s ]; do sleep 0.02; done" % go
        a = self.d.create(command=["sh", "-c", hold], env={"PATH": "/usr/bin:/bin"}, name="a")
        b = self.d.create(command=["sleep", "0.1"], env={"PATH": "/usr/bin:/bin"}, name="b")
        c = self.d.create(command=["sleep", "0.1"], env={"PATH": "/usr/bin:/bin"}, name="c", priority=5)
        self.assertEqual(self.d.job(a["id"])["status"], "running")
        self.assertEqual(self.d.job(b["id"])["status"], "queued")
        self.assertEqual(self.d.job(c["id"])["status"], "queued")
        open(go, "w").close()
        # One request is one consistent snapshot: never more than one running.
        most = [0]

        def all_done():
            status, _, listing = self.d.request("GET", "/jobs?status=running,paused")
            self.assertEqual(status, 200, listing)
            most[0] = max(most[0], listing["total"])
            return all(self.d.job(x["id"])["status"] == "succeeded" for x in (a, b, c))

        wait_for(all_done, what="a, b and c to succeed")
        self.assertEqual(most[0], 1)
        # The runs did not overlap, and c (higher priority) went before b.
        jobs = sorted((self.d.job(x["id"]) for x in (a, b, c)), key=lambda j: j["started_at"])
        self.assertEqual([j["name"] for j in jobs], ["a", "c", "b"])
        for earlier, later in zip(jobs, jobs[1:]):
            self.assertLessEqual(earlier["finished_at"], later["started_at"])


class Restart(DaemonTest):
    def test_restart_keeps_jobs_and_readopts_running_ones(self):
        """A graceful stop leaves process jobs running under their supervisor;
        the next start re-adopts them (kill -9 and the rest: test_crash.py)."""
        done = self.d.create(command=["true"], env={"PATH": "/usr/bin:/bin"})
        self.d.wait_status(done["id"], "succeeded")
        long = self.d.create(command=["sleep", "100"], env={"PATH": "/usr/bin:/bin"})
        running = self.d.wait_status(long["id"], "running")
        self.assertEqual(self.d.stop(), 0)
        self.assertTrue(alive(running["pid"]))
        self.d.start()
        self.assertEqual(self.d.job(done["id"])["status"], "succeeded")
        adopted = self.d.job(long["id"])
        self.assertEqual((adopted["status"], adopted["pid"], adopted["attempts"]), ("running", running["pid"], 1))
        self.assertEqual(self.d.request("POST", "/jobs/%d/cancel" % long["id"])[0], 200)
        wait_for(lambda: not alive(running["pid"]), what="the cancelled job to be gone")
        self.assertEqual(self.d.wait_status(long["id"], "cancelled")["status"], "cancelled")
        later = self.d.create(command=["true"], env={"PATH": "/usr/bin:/bin"})
        self.assertGreater(later["id"], long["id"])


class BadInput(DaemonTest):
    def error(self, status_body, code):
        status, body = status_body
        self.assertEqual(status, code, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("message", body["error"])
        return body["error"]["message"]

    def test_bad_requests_get_clear_errors(self):
        r = self.d.request
        msg = self.error(r("POST", "/jobs", raw=b"{not json")[::2], 400)
        self.assertTrue(msg)
        msg = self.error(r("POST", "/jobs", {"command": ["true"], "timout": 5})[::2], 400)
        self.assertIn("timout", msg)
        msg = self.error(r("POST", "/jobs", {"command": "true"})[::2], 400)
        self.assertIn("command", msg)
        msg = self.error(r("POST", "/jobs", {"command": ["true"], "priority": "high"})[::2], 400)
        self.assertIn("priority", msg)
        self.error(r("POST", "/jobs", {"command": []})[::2], 400)
        self.error(r("POST", "/jobs", raw=b'{"command":["true"]}', ctype="text/plain")[::2], 415)
        # A body over the limit is refused from its Content-Length, before it
        # is read: send the head and the start of the body, read the answer.
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=DEADLINE) as s:
            s.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n{\"command\": [\"" % (2 << 20))
            answer = b""
            while b'"error"' not in answer:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:200])
        self.assertIn(b'"error"', answer)
        msg = self.error(r("GET", "/jobs/999999")[::2], 404)
        self.assertIn("999999", msg)
        self.error(r("GET", "/nope")[::2], 404)
        self.error(r("PUT", "/jobs")[::2], 405)
        job = self.d.create(command=["true"], env={"PATH": "/usr/bin:/bin"})
        self.d.wait_status(job["id"], "succeeded")
        self.error(r("POST", "/jobs/%d/pause" % job["id"])[::2], 409)
        self.assertEqual(r("DELETE", "/jobs/%d" % job["id"])[0], 204)
        self.error(r("GET", "/jobs/%d" % job["id"])[::2], 404)
        # Raw garbage on a socket, then the server still answers.
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=5) as s:
            s.sendall(b"\x00\x01garbage\r\n\r\n")
            try:
                s.recv(100)
            except OSError:
                pass
        status, _, health = r("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(health["status"], "ok")

    def test_running_job_cannot_be_deleted(self):
        job = self.d.create(command=["sleep", "3600"], env={"PATH": "/usr/bin:/bin"})
        self.d.wait_status(job["id"], "running")
        self.error(self.d.request("DELETE", "/jobs/%d" % job["id"])[::2], 409)
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.d.wait_status(job["id"], "cancelled")


class Streams(DaemonTest):
    def test_sse_stream(self):
        job = self.d.create(kind="demo", demo_step_ms=20)
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=DEADLINE) as s:
            s.sendall(b"GET /events?job=%d HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n" % job["id"])
            buf = b""
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end and b'"status":"succeeded"' not in buf.replace(b" ", b""):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        self.assertIn(b"text/event-stream", buf)
        self.assertIn(b"data:", buf)
        self.assertIn(b'"status":"succeeded"', buf.replace(b" ", b""))

    def test_jobs_stream_snapshot_then_changes(self):
        async def run():
            async with websockets.connect("ws://127.0.0.1:%d/ws/jobs" % self.d.port) as ws:
                snap = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                self.assertEqual(snap["type"], "snapshot")
                job = self.d.create(kind="demo", demo_step_ms=10)
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if msg.get("type") == "job" and msg["job"]["id"] == job["id"] and \
                            msg["job"]["status"] == "succeeded":
                        break
        asyncio.run(run())


class PidFile(unittest.TestCase):
    """galvanid's pid file (--pid-file, default <db>.pid): written once it listens, removed by a clean stop,
    left behind by kill -9 and replaced by the next start; an explicit one that cannot be written is a
    start-up error."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-e2e-pid-")
        self.dir = self.tmp.name

    def tearDown(self):
        end_leftover_jobs(os.path.join(self.dir, "galvani.db.run"))
        self.tmp.cleanup()

    def test_default_next_to_the_db(self):
        path = os.path.join(self.dir, "galvani.db.pid")
        d = Daemon(self.dir)
        self.assertEqual(read(path), "%d\n" % d.proc.pid)  # there once "listening" is logged
        self.assertFalse(os.path.exists(path + ".tmp"))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path), "a clean stop removes it")

    def test_kill_9_leaves_it_and_the_next_start_replaces_it(self):
        path = os.path.join(self.dir, "galvani.db.pid")
        d = Daemon(self.dir)
        first = d.proc.pid
        os.kill(int(read(path)), signal.SIGKILL)  # what the README does: this daemon, no other
        d.proc.wait(DEADLINE)
        d.pump.join(DEADLINE)
        d.proc.stderr.close()
        self.assertEqual(read(path), "%d\n" % first)  # stale
        d.start()
        self.assertNotEqual(d.proc.pid, first)
        self.assertEqual(read(path), "%d\n" % d.proc.pid)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_explicit_path_and_env(self):
        path = os.path.join(self.dir, "daemon.pid")
        d = Daemon(self.dir, "--pid-file", path)
        self.assertEqual(read(path), "%d\n" % d.proc.pid)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "galvani.db.pid")))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(path))
        env_path = os.path.join(self.dir, "env.pid")
        os.environ["GALVANI_PID_FILE"] = env_path
        try:
            d = Daemon(self.dir)
        finally:
            del os.environ["GALVANI_PID_FILE"]
        self.assertEqual(read(env_path), "%d\n" % d.proc.pid)
        self.assertEqual(d.stop(), 0)

    def test_explicit_unwritable_is_an_error(self):
        bad = os.path.join(self.dir, "no-such-dir", "galvanid.pid")
        p = subprocess.run([GALVANID, "--listen", "127.0.0.1:0", "--db", os.path.join(self.dir, "galvani.db"),
                            "--pid-file", bad], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot write the pid file " + bad, p.stderr)

    def test_stop_keeps_a_newer_daemons_file(self):
        """A stop removes the file only while it holds its own pid."""
        path = os.path.join(self.dir, "galvani.db.pid")
        d = Daemon(self.dir)
        with open(path, "w") as f:
            f.write("1\n")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(read(path), "1\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
