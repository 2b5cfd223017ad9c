#!/usr/bin/python3
"""Jobs outlive galvanid: kill -9 the daemon, restart it on the same
database, and every process job is re-adopted from its supervisor
(galvani-shim) — progress goes on, pause / resume / cancel / params work,
a job that ended while the daemon was dead gets its true exit status, and no
job runs twice (each job appends its id to a runs file when it starts).

Run with GALVANID=/path/to/galvanid (CTest sets it); reuses test_e2e's
Daemon fixture.  docs/guarantees.md cites this file.
"""
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DEADLINE, DaemonTest, alive, group_stopped, wait_for  # noqa: E402
import storedb  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin"}


class CrashRestart(DaemonTest):
    extra_args = ("--cancel-grace", "2", "--max-running", "8")

    def run_script(self, body):
        """A job script that first records that it started."""
        return self.script("job-%d.sh" % len(os.listdir(self.dir)),
                           "#!/bin/sh\necho \"$GALVANI_JOB_ID\" >> %s/runs\n%s\n" % (self.dir, body))

    def runs(self):
        try:
            with open(os.path.join(self.dir, "runs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def test_kill9_restart_readopts(self):
        d = self.d
        # The ticker must outlive the whole test however slow the machine is
        # (it used to end by itself after 600 steps, ~30 s): it counts on,
        # and the test follows `current`, one step per line.
        ticker = self.run_script("i=0; while :; do i=$((i+1)); echo \"::progress $i/1000000\"; "
                                 "sleep 0.05; done")
        counter = self.run_script("while :; do echo x >> %s/counter; sleep 0.02; done" % self.dir)
        # These two end when the test creates the "go" file, after the kill.
        wait_go = "while [ ! -e %s/go ]; do sleep 0.02; done; " % self.dir
        ends_fail = self.run_script(wait_go + "echo '::progress 50'; echo '::status dying'; exit 3")
        ends_ok = self.run_script(wait_go + "echo '::progress 100'; exit 0")
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "coop.sh")) as f:
            coop = self.run_script(f.read())
        running = d.create(name="ticker", command=["/bin/sh", ticker], env=ENV)
        paused = d.create(name="counter", command=["/bin/sh", counter], env=ENV)
        failing = d.create(name="fails-while-down", command=["/bin/sh", ends_fail], env=ENV)
        succeeding = d.create(name="succeeds-while-down", command=["/bin/sh", ends_ok], env=ENV)
        coop_job = d.create(name="coop", command=["/bin/sh", coop], env=ENV, pause_mode="cooperative")
        ids = [running["id"], paused["id"], failing["id"], succeeding["id"], coop_job["id"]]
        for i in ids:
            d.wait_status(i, "running")
        wait_for(lambda: d.job(running["id"])["current"] >= 2, what="the ticker to progress")
        wait_for(lambda: d.job(coop_job["id"])["message"] == "ready", what="the cooperative job to be ready")
        self.assertEqual(d.request("POST", "/jobs/%d/pause" % paused["id"])[0], 200)
        pids = {i: d.job(i)["pid"] for i in ids}
        wait_for(lambda: group_stopped(pids[paused["id"]]), what="the counter to stop")
        before = d.job(running["id"])["current"]

        # kill -9: no shutdown code runs at all.
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.pump.join(DEADLINE)
        d.proc.stderr.close()
        # While galvanid is dead: the jobs go on, and two of them end.
        open(os.path.join(self.dir, "go"), "w").close()
        wait_for(lambda: not alive(pids[failing["id"]]) and not alive(pids[succeeding["id"]]),
                 what="two jobs to end while galvanid is down")
        self.assertTrue(alive(pids[running["id"]]))
        d.lines = []
        t0 = time.monotonic()
        d.start()  # returns once galvanid listens, i.e. after every job was re-adopted
        adopted_in = time.monotonic() - t0

        # Every job still exists, with its pid; the ones that ended have
        # their true exit status and the progress they printed before it.
        job = d.wait_status(failing["id"], "failed")
        self.assertEqual((job["exit_code"], job["progress"], job["message"], job["attempts"]), (3, 50, "dying", 1))
        self.assertEqual(job["error"], "exited with status 3")
        job = d.wait_status(succeeding["id"], "succeeded")
        self.assertEqual((job["exit_code"], job["progress"]), (0, 100))
        job = d.job(running["id"])
        self.assertEqual((job["status"], job["pid"], job["attempts"]), ("running", pids[running["id"]], 1))
        wait_for(lambda: d.job(running["id"])["current"] > before + 1, what="the ticker to progress after restart")
        job = d.job(paused["id"])
        self.assertEqual((job["status"], job["pid"]), ("paused", pids[paused["id"]]))
        self.assertTrue(group_stopped(pids[paused["id"]]))

        # Control works again: pause/resume (stop mode), params and cancel
        # (cooperative), cancel (stop mode).
        size = os.path.getsize(os.path.join(self.dir, "counter"))
        self.assertEqual(d.request("POST", "/jobs/%d/resume" % paused["id"])[0], 200)
        wait_for(lambda: os.path.getsize(os.path.join(self.dir, "counter")) > size, what="the counter to resume")
        self.assertEqual(d.request("POST", "/jobs/%d/pause" % running["id"])[0], 200)
        wait_for(lambda: group_stopped(pids[running["id"]]), what="the ticker to stop")
        self.assertEqual(d.request("POST", "/jobs/%d/resume" % running["id"])[0], 200)
        status, _, body = d.request("PATCH", "/jobs/%d/params" % coop_job["id"], {"lr": 0.5})
        self.assertEqual(status, 200, body)
        wait_for(lambda: d.job(coop_job["id"])["message"] == 'params {"lr":0.5}',
                 what="the cooperative job to get its params")
        for i in (coop_job["id"], paused["id"], running["id"]):
            self.assertEqual(d.request("POST", "/jobs/%d/cancel" % i)[0], 200)
        for i in (coop_job["id"], paused["id"], running["id"]):
            wait_for(lambda: not alive(pids[i]), what="job %d to end" % i)
            self.assertEqual(d.wait_status(i, "cancelled")["status"], "cancelled")
        wait_for(lambda: d.job(coop_job["id"])["message"] == "cleaned up", what="the cooperative cleanup")
        job = d.job(running["id"])
        self.assertEqual(job["signal"], signal.SIGTERM, job)  # the whole row if not: seen once in CI

        # Nothing ran twice; every run dir is gone once its exit is stored.
        self.assertEqual(sorted(self.runs()), sorted(ids))
        wait_for(lambda: os.listdir(os.path.join(self.dir, "galvani.db.run")) == [],
                 what="the run dirs to be removed")
        d.wait_log("job.adopted")
        sys.stderr.write("\n[crash] restart to listening, %d jobs re-adopted: %.0f ms\n"
                         % (len(ids), adopted_in * 1000))

    def test_group_commit_answers_match_the_store_after_kill9(self):
        """Concurrent pause / resume requests share each loop tick's commit
        (group commit): a 200 is sent only once its transition is stored.
        kill -9 in the middle of the load: after the restart every job's
        stored status is the one its last 200 said, or the one its request in
        flight (unanswered) asked for — never anything else."""
        import http.client
        import threading
        d = self.d
        ids = [d.create(kind="demo", demo_step_ms=1000)["id"] for _ in range(8)]
        for i in ids:
            d.wait_status(i, "running")
        state = {i: {"ok": "running", "inflight": None, "answers": 0} for i in ids}
        port = d.port

        def toggle(job_id):
            st = state[job_id]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
            try:
                while True:
                    want = "paused" if st["ok"] == "running" else "running"
                    st["inflight"] = want
                    conn.request("POST", "/jobs/%d/%s" % (job_id, "pause" if want == "paused" else "resume"),
                                 body=b"", headers={"Content-Length": "0"})
                    resp = conn.getresponse()
                    body = json.loads(resp.read())
                    assert resp.status == 200, (resp.status, body)
                    assert body["status"] == want, body
                    st["ok"], st["inflight"] = want, None
                    st["answers"] += 1
            except (OSError, http.client.HTTPException):
                return  # the daemon was killed

        threads = [threading.Thread(target=toggle, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        wait_for(lambda: sum(s["answers"] for s in state.values()) >= 400, what="answers under load")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(DEADLINE)
        for t in threads:
            t.join(DEADLINE)
        d.pump.join(DEADLINE)
        d.proc.stderr.close()
        d.start()
        for i in ids:
            stored = d.job(i)["status"]
            allowed = {state[i]["ok"], state[i]["inflight"]} - {None}
            self.assertIn(stored, allowed, (i, state[i]))
        sys.stderr.write("\n[crash] group commit: %d answers before the kill, all durable\n"
                         % sum(s["answers"] for s in state.values()))

    def test_rate_after_restart_follows_the_real_pace(self):
        """Rate and ETA come from the job's real progress points, also
        right after a restart: the daemon used to measure from the moment
        it re-adopted the job, so the first step after it (1 % in 0.3 s)
        read as 3 %/s for a job doing 1 %/s.  Bounds on values only: the
        job cannot go faster than one step per 0.5 s (2 %/s), so no rate
        it is shown may be above that plus a margin; a busy machine only
        makes it slower."""
        d = self.d
        # the sleep first: step i comes at least i * 0.5 s after the start
        pace = self.run_script("i=0; while :; do sleep 0.5; i=$((i+1)); echo \"::progress $i\"; done")
        job = d.create(name="slow", command=["/bin/sh", pace], env=ENV)
        d.wait_status(job["id"], "running")
        wait_for(lambda: d.job(job["id"])["current"] >= 4, what="the job to make some progress")
        pid = d.job(job["id"])["pid"]
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.pump.join(DEADLINE)
        d.proc.stderr.close()
        d.lines = []
        d.start()
        self.assertEqual(d.job(job["id"])["pid"], pid)
        seen = []

        def next_step():
            j = d.job(job["id"])
            if not seen or j["current"] > seen[-1][0]:
                seen.append((j["current"], j["rate"], j["eta"]))
            return len(seen) >= 5
        wait_for(next_step, what="five progress steps after the restart")
        for current, rate, eta in seen:
            self.assertGreater(rate, 0, seen)
            self.assertLessEqual(rate, 2.5, "rate %s %%/s at %s %% for a job doing at most 2 %%/s: %s"
                                 % (rate, current, seen))
            self.assertGreaterEqual(eta, (100 - current) / 2.5, seen)
        self.assertEqual(d.request("POST", "/jobs/%d/cancel" % job["id"])[0], 200)
        d.wait_status(job["id"], "cancelled")

    def test_never_started_job_is_queued_again(self):
        """The daemon died after storing "running" but before the job's
        supervisor started it: no run dir, so the job goes back to the queue
        and runs (once)."""
        d = self.d
        script = self.run_script("exit 0")
        job = d.create(command=["/bin/sh", script], env=ENV)
        d.wait_status(job["id"], "succeeded")
        self.assertEqual(d.stop(), 0)
        # Forge the crash window: the row says running, no run dir exists.
        storedb.execute(os.path.join(self.dir, "galvani.db"), "UPDATE jobs SET status = 'running', has_exit = ? "
                       "WHERE id = ?", (False, job["id"]))
        os.remove(os.path.join(self.dir, "runs"))
        d.start()
        again = d.wait_status(job["id"], "succeeded")
        self.assertEqual(self.runs(), [job["id"]])
        self.assertEqual(again["attempts"], 1)
        d.wait_log("now=queued")

    def test_stored_status_wins_over_the_process(self):
        """galvanid died between committing a pause (or resume) and telling
        the shim: at restart the process is made to follow the stored status."""
        d = self.d
        counter = os.path.join(self.dir, "counter")
        script = self.run_script("while :; do echo x >> %s; sleep 0.02; done" % counter)
        a = d.create(command=["/bin/sh", script], env=ENV)
        b = d.create(command=["/bin/sh", script], env=ENV)
        pa, pb = d.wait_status(a["id"], "running")["pid"], d.wait_status(b["id"], "running")["pid"]
        self.assertEqual(d.request("POST", "/jobs/%d/pause" % b["id"])[0], 200)
        wait_for(lambda: group_stopped(pb), what="b to stop")
        self.assertEqual(d.stop(), 0)
        db = os.path.join(self.dir, "galvani.db")
        storedb.execute(db, "UPDATE jobs SET status = 'paused' WHERE id = ?", (a["id"],))   # pause not yet sent
        storedb.execute(db, "UPDATE jobs SET status = 'running' WHERE id = ?", (b["id"],))  # resume not yet sent
        self.assertFalse(group_stopped(pa))
        d.start()
        wait_for(lambda: group_stopped(pa), what="a to be stopped as stored")
        wait_for(lambda: not group_stopped(pb), what="b to run as stored")
        self.assertEqual((d.job(a["id"])["status"], d.job(b["id"])["status"]), ("paused", "running"))
        self.assertEqual(d.request("POST", "/jobs/%d/resume" % a["id"])[0], 200)
        wait_for(lambda: not group_stopped(pa), what="a to resume")


if __name__ == "__main__":
    unittest.main(verbosity=2)
