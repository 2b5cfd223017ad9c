#!/usr/bin/python3
"""End-to-end tests of galvanid under store faults, and of its retention limit.

The real daemon, driven over HTTP, with its database made to fail:
  - by the fault-injecting SQLite VFS (store/sqlite/faultvfs.h), switched through
    the file named by GALVANID_TEST_FAULTS ("full", "ioerr", "busy", or
    empty for none);
  - by a second real SQLite connection holding the write lock;
  - by a real full filesystem: a small tmpfs (skipped when mounting is not
    permitted).
Each test ends by stopping the daemon, which must exit 0 (a sanitizer build
reports leaks through the exit status), and by checking the database with
PRAGMA integrity_check.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DEADLINE, Daemon, DaemonTest, wait_for  # noqa: E402


def store_state(d):
    status, _, body = d.request("GET", "/healthz")
    assert status == 200, (status, body)
    return body["store"]


def integrity(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def stored(db, sql, args=()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def cancel_all(d):
    """Cancel what is still queued, running or paused and wait for it: a job
    process outlives galvanid (its supervisor keeps it), and a test must not
    leave processes behind."""
    wait_for(lambda: store_state(d)["state"] == "ok", what="the store to take the cancels")
    _, _, listing = d.request("GET", "/jobs?status=queued,running,paused&limit=1000")
    for job in listing["jobs"]:
        d.request("POST", "/jobs/%d/cancel" % job["id"])
    for job in listing["jobs"]:
        d.wait_status(job["id"], "cancelled", "succeeded", "failed")


class SseWatcher:
    """Reads /events?job=ID in a thread and records (time, progress)."""

    def __init__(self, port, job_id):
        self.seen = []
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.sendall(b"GET /events?job=%d HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n" % job_id)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                for m in re.finditer(rb'"progress":\s*([0-9.]+)', buf):
                    self.seen.append((time.monotonic(), float(m.group(1))))
                buf = buf[buf.rfind(b"\n") + 1:]
        except OSError:
            return

    def since(self, t):
        return [p for (at, p) in self.seen if at >= t]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class FaultTest(DaemonTest):
    """A daemon whose store goes through the fault-injecting VFS."""

    extra_args = ("--max-running", "2")

    def setUp(self):
        self.ctl_dir = tempfile.mkdtemp(prefix="galvani-faults-")
        self.addCleanup(shutil.rmtree, self.ctl_dir, True)
        self.ctl = os.path.join(self.ctl_dir, "fault")
        os.environ["GALVANID_TEST_FAULTS"] = self.ctl
        try:
            super().setUp()
        finally:
            del os.environ["GALVANID_TEST_FAULTS"]
        self.db = os.path.join(self.dir, "galvani.db")

    def tearDown(self):
        self.fault("")
        try:
            if self.d.proc.poll() is None:
                cancel_all(self.d)
                rc = self.d.stop()
                self.assertEqual(rc, 0, "galvanid exited with %s:\n%s" % (rc, self.d.log()[-4000:]))
            self.assertEqual(integrity(self.db), "ok")
        finally:
            self.tmp.cleanup()

    def fault(self, word):
        with open(self.ctl, "w") as f:
            f.write(word)

    def assert_unavailable(self, resp, cause):
        status, _, body = resp
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "store_unavailable", body)
        self.assertIn(cause, body["error"]["message"])
        self.assertIn("nothing was changed", body["error"]["message"])

    def wait_recovered(self):
        t0 = time.monotonic()
        wait_for(lambda: store_state(self.d)["state"] == "ok", what="the store to recover")
        return time.monotonic() - t0


class DiskFull(FaultTest):
    def test_writes_refused_reads_and_streams_served_then_recovers(self):
        d = self.d
        sleeper = d.create(command=["sleep", "3600"])
        # Slow enough that it is still running however long the fault takes
        # on a busy machine (100 steps of 0.2 s), fast enough for 3 frames.
        demo = d.create(kind="demo", demo_step_ms=200)
        d.wait_status(sleeper["id"], "running")
        before = d.job(sleeper["id"])
        watcher = SseWatcher(d.port, demo["id"])
        try:
            self.fault("full")
            self.assert_unavailable(d.request("POST", "/jobs", {"command": ["true"]}), "disk full")
            t_fault = time.monotonic()
            self.assert_unavailable(d.request("POST", "/jobs/%d/pause" % sleeper["id"]), "disk full")
            self.assert_unavailable(d.request("POST", "/jobs/%d/cancel" % sleeper["id"]), "disk full")
            self.assert_unavailable(d.request("PATCH", "/jobs/%d/params" % sleeper["id"], {"x": 1}), "disk full")
            # Nothing changed in memory: the job reads back exactly as before.
            after = d.job(sleeper["id"])
            for key in ("status", "params", "pid", "finished_at", "attempts", "error"):
                self.assertEqual(after[key], before[key], key)
            # Reads keep working, and /healthz tells why.
            status, _, listing = d.request("GET", "/jobs")
            self.assertEqual(status, 200)
            self.assertEqual(listing["total"], 2)
            st = store_state(d)
            self.assertEqual(st["state"], "unavailable")
            self.assertEqual(st["cause"], "disk full")
            # The stream keeps delivering the demo's progress.
            wait_for(lambda: len(watcher.since(t_fault)) >= 3, what="stream frames during the fault")
            progress = watcher.since(t_fault)
            self.assertGreater(progress[-1], progress[0])
            time.sleep(0.3)
            self.fault("")
            # It recovers by itself (wait_recovered fails the test if it
            # never does); how fast depends on the machine: printed only.
            took = self.wait_recovered()
            print("recovered %.0f ms after the fault cleared" % (took * 1000), file=sys.stderr)
            status, _, job = d.request("POST", "/jobs/%d/pause" % sleeper["id"])
            self.assertEqual(status, 200, job)
            self.assertEqual(job["status"], "paused")
        finally:
            watcher.close()
        d.wait_log("store.recovered")  # (the log is read by a thread: wait for the last line expected)
        log = d.log()
        self.assertEqual(log.count("store.unavailable"), 1, log[-3000:])
        self.assertEqual(log.count("store.recovered"), 1)
        self.assertIn('cause="disk full"', log)
        # What the API acknowledged is what the database holds (read while
        # the daemon runs: a WAL reader sees every commit).
        rows = dict(stored(self.db, "SELECT id, status FROM jobs"))
        self.assertEqual(rows[sleeper["id"]], "paused")
        self.assertEqual(len(rows), 2)

    def test_exit_during_fault_is_kept_and_stored_after(self):
        d = self.d
        runs = os.path.join(self.dir, "runs")
        # The job exits when told to (the file "go"), after the fault is on:
        # not "sleep 0.5 and hope the fault is set in time".
        go = os.path.join(self.dir, "go")
        job = d.create(command=["/bin/sh", "-c", "echo run >> %s; while [ ! -e %s ]; do sleep 0.02; done"
                                % (runs, go)])
        d.wait_status(job["id"], "running")
        self.fault("ioerr")
        open(go, "w").close()
        d.wait_status(job["id"], "succeeded")  # memory has the truth at once
        time.sleep(0.5)
        self.assertEqual(d.job(job["id"])["status"], "succeeded")  # not reverted, not re-run
        self.assertEqual(stored(self.db, "SELECT status FROM jobs WHERE id = ?", (job["id"],))[0][0], "running")
        self.assertEqual(store_state(d)["cause"], "I/O error")
        self.fault("")
        self.wait_recovered()
        wait_for(lambda: stored(self.db, "SELECT status FROM jobs WHERE id = ?", (job["id"],))[0][0] ==
                 "succeeded", what="the exit to be stored")
        with open(runs) as f:
            self.assertEqual(f.read(), "run\n")


class RandomFaults(FaultTest):
    extra_args = ("--max-running", "50")

    def test_acknowledged_is_stored_refused_changes_nothing(self):
        """600 requests (create, pause, resume, cancel, params) on demo jobs
        (they change only when asked) while the disk fills and empties and
        the device fails at random: after each answer memory is what the
        answers say, and at the end so is the database — every 2xx there,
        nothing a 503 refused."""
        d = self.d
        rng = random.Random(6)
        expect = {}  # id -> (status, params) as last acknowledged
        created = refused_creates = refused_other = 0
        fault = ""
        for step in range(600):
            if rng.random() < 0.15:
                fault = rng.choice(["", "", "full", "ioerr"])
                self.fault(fault)
            ids = sorted(expect)
            op = rng.choice(["create"] * 2 + ["pause", "resume", "cancel", "params"] * 3 if ids else ["create"])
            if op == "create":
                status, _, body = d.request("POST", "/jobs", {"kind": "demo", "demo_step_ms": 60000})
                if status == 201:
                    expect[body["id"]] = (body["status"], body["params"])
                    created += 1
                else:
                    refused_creates += 1
            else:
                jid = rng.choice(ids)
                if op == "params":
                    status, _, body = d.request("PATCH", "/jobs/%d/params" % jid, {"v": step})
                else:
                    status, _, body = d.request("POST", "/jobs/%d/%s" % (jid, op))
                if status == 200:
                    expect[jid] = (body["status"], body["params"])
                elif status == 503:
                    refused_other += 1
            self.assertIn(status, (200, 201, 409, 503), body)
            if status == 503:
                self.assertEqual(body["error"]["code"], "store_unavailable", body)
                self.assertNotEqual(fault, "", "a 503 without a fault: %s" % body)
            for jid in ([body["id"]] if op == "create" and status == 201 else [] if op == "create" else [jid]):
                job = d.job(jid)
                self.assertEqual((job["status"], job["params"]), expect[jid], "job %d after %s" % (jid, op))
        self.fault("")
        self.wait_recovered()
        print("%d jobs created, %d creates and %d other requests refused" % (created, refused_creates, refused_other),
              file=sys.stderr)
        self.assertGreater(refused_creates + refused_other, 30)  # the faults did bite
        self.assertGreater(created, 20)
        d.stop()
        rows = {r[0]: (r[1], json.loads(r[2])) for r in stored(self.db, "SELECT id, status, params_json FROM jobs")}
        self.assertEqual(rows, expect)


class Locked(FaultTest):
    def test_brief_lock_waited_out_long_lock_refused(self):
        d = self.d
        job = d.create(command=["sleep", "3600"])
        d.wait_status(job["id"], "running")
        # A brief write lock from another process (an operator's sqlite3
        # shell) is waited out: no error.
        holder = subprocess.Popen(
            ["/usr/bin/python3", "-c",
             "import sqlite3, sys, time\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
             "time.sleep(float(sys.argv[2])); c.execute('COMMIT')\n",
             self.db, "0.3"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(holder.stdout.readline().strip(), "locked")
        status, _, body = d.request("POST", "/jobs/%d/pause" % job["id"])
        self.assertEqual(status, 200, body)
        self.assertEqual(holder.wait(DEADLINE), 0)
        holder.stdout.close()
        # A lock held longer than the busy timeout (1 s): 503 naming the cause.
        conn = sqlite3.connect(self.db, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.assert_unavailable(d.request("POST", "/jobs/%d/resume" % job["id"]), "database is locked")
            t0 = time.monotonic()
            self.assert_unavailable(d.request("POST", "/jobs", {"command": ["true"]}), "database is locked")
            # No second wait while the fault lasts.  A wait would last the
            # whole busy timeout (1 s) at least, so that is the bound; a
            # request without one takes milliseconds even on a busy machine.
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertEqual(d.job(job["id"])["status"], "paused")
            self.assertEqual(store_state(d)["cause"], "database is locked")
        finally:
            conn.execute("COMMIT")
            conn.close()
        self.wait_recovered()
        status, _, body = d.request("POST", "/jobs/%d/resume" % job["id"])
        self.assertEqual(status, 200, body)
        d.wait_log("store.recovered")  # (the log is read by a thread: wait for the last line expected)
        log = d.log()
        self.assertEqual(log.count("store.unavailable"), 1)
        self.assertIn('cause="database is locked"', log)


class Retention(DaemonTest):
    extra_args = ("--max-jobs", "20", "--max-running", "1")

    def test_max_jobs_keeps_registry_store_and_logs_bounded(self):
        d = self.d
        first = [d.create(command=["/bin/sh", "-c", "echo hello"]) for _ in range(3)]
        for job in first:
            d.wait_status(job["id"], "succeeded")
        logs = os.path.join(self.dir, "galvani.db.logs")
        paths = [os.path.join(logs, "%d.log" % job["id"]) for job in first]
        self.assertTrue(all(os.path.exists(p) for p in paths))
        slow = d.create(kind="demo", demo_step_ms=60000)  # holds the only slot
        highest = 0
        for _ in range(120):
            job = d.create(kind="demo")
            status, _, body = d.request("POST", "/jobs/%d/cancel" % job["id"])
            self.assertEqual(status, 200, body)
            status, _, health = d.request("GET", "/healthz")
            highest = max(highest, health["total"])
        self.assertLessEqual(highest, 21)
        wait_for(lambda: d.request("GET", "/healthz")[2]["total"] == 20, what="the registry to hold 20 jobs")
        status, _, listing = d.request("GET", "/jobs?limit=1000")
        self.assertEqual(listing["total"], 20)
        ids = sorted(j["id"] for j in listing["jobs"])
        self.assertIn(slow["id"], ids)  # running: never pruned
        self.assertEqual(ids[1:], list(range(job["id"] - 18, job["id"] + 1)))  # the newest finished ones
        self.assertFalse(any(os.path.exists(p) for p in paths))  # their logs went with them
        self.assertEqual(d.request("GET", "/jobs/%d" % first[0]["id"])[0], 404)
        self.assertEqual(stored(os.path.join(self.dir, "galvani.db"), "SELECT count(*) FROM jobs")[0][0], 20)


class TmpfsFull(DaemonTest):
    """A real full filesystem: the database on a 2 MiB tmpfs, filled up."""

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="galvani-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("cannot mount a tmpfs here (%s): the fault-injecting VFS tests cover disk full"
                          % (r.stderr.strip() or "exit %d" % r.returncode))
        # Cleanups run after tearDown, and also when setUp fails below.
        self.addCleanup(os.rmdir, self.mnt)
        self.addCleanup(subprocess.run, ["umount", self.mnt], check=False)
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-e2e-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.db = os.path.join(self.mnt, "galvani.db")
        self.d = Daemon(self.dir, "--db", self.db, "--log-dir", os.path.join(self.dir, "logs"))

    def tearDown(self):
        if self.d.proc.poll() is None:
            rc = self.d.stop()
            self.assertEqual(rc, 0, "galvanid exited with %s:\n%s" % (rc, self.d.log()[-4000:]))
        self.assertEqual(integrity(self.db), "ok")

    def test_full_tmpfs_refused_then_recovers(self):
        d = self.d
        accepted = [d.create(kind="demo", demo_step_ms=60000, name="x" * 200)]
        filler = os.path.join(self.mnt, "filler")
        # Unbuffered: a buffered file keeps the bytes of a partial write and
        # fails again when closed (which happened once the database no
        # longer left the free space a multiple of the chunk).
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        refused = None
        # WAL space already allocated can be reused after a checkpoint, so a
        # few writes may still fit: go on until one does not.
        for _ in range(500):
            status, _, body = d.request("POST", "/jobs", {"kind": "demo", "name": "y" * 200})
            if status == 201:
                accepted.append(body)
                continue
            refused = (status, None, body)
            break
        self.assertIsNotNone(refused, "a full tmpfs never refused a write")
        status, _, body = refused
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "store_unavailable")
        self.assertIn("disk full", body["error"]["message"])
        self.assertEqual(store_state(d)["cause"], "disk full")
        self.assertEqual(d.request("GET", "/jobs/%d" % accepted[0]["id"])[0], 200)
        os.unlink(filler)
        wait_for(lambda: store_state(d)["state"] == "ok", what="the store to recover")
        job = d.create(kind="demo", demo_step_ms=60000)
        d.stop()
        ids = {row[0] for row in stored(self.db, "SELECT id FROM jobs")}
        self.assertTrue({j["id"] for j in accepted} | {job["id"]} <= ids)  # every 2xx is stored
        self.assertEqual(d.log().count("store.unavailable"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
