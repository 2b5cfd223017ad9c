#!/usr/bin/python3
"""Torture: a few hundred short and long process jobs while galvanid is
killed with SIGKILL at random points, several times, and restarted on the
same database.  At the end:

  - every job that got a 201 exists, exactly once (by its unique name);
  - every job in the store ran exactly as often as its kind says (once; a
    failing job with max_retries 1 twice) — each job appends its id to a
    runs file when it starts, and nothing else writes there;
  - every job has the right final state (succeeded / failed with exit code
    3 after the right number of attempts);
  - no run dir is left, and PRAGMA integrity_check says "ok".

About twenty seconds on an idle machine (deadlines of minutes end a stuck
run); with GALVANI_TORTURE_LIGHT=1 (the sanitizer
tree, set by tests/CMakeLists.txt) it uses fewer jobs and kills.  The seed
is fixed (16) and printed; GALVANI_TORTURE_SEED=N runs another.
"""
import collections
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DaemonTest, wait_for  # noqa: E402
import storedb  # noqa: E402

LIGHT = os.environ.get("GALVANI_TORTURE_LIGHT", "0") == "1"
JOBS = 80 if LIGHT else 300
KILLS = 3 if LIGHT else 6
ENV = {"PATH": "/usr/bin:/bin"}


def post_job(port, spec):
    """POST /jobs to the galvanid on port: 201 -> the job; refused or 503 -> None (certainly not taken);
    anything else -> "unknown" (the daemon may have stored it)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/jobs", body=json.dumps(spec), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    except ConnectionRefusedError:
        return None
    except (OSError, http.client.HTTPException):
        return "unknown"
    if resp.status == 201:
        return json.loads(body)
    return None if resp.status == 503 else "unknown"


class Torture(DaemonTest):
    extra_args = ("--max-running", "12", "--cancel-grace", "1", "--log-level", "info")

    def post(self, spec):
        return post_job(self.d.port, spec)

    def test_sigkill_at_random_points(self):
        # A fixed seed by default: the suite is deterministic in what it does
        # (when the kills land still depends on the machine); another one to explore.
        seed = int(os.environ.get("GALVANI_TORTURE_SEED", "16"))
        rng = random.Random(seed)
        sys.stderr.write("\n[torture] seed=%d jobs=%d kills=%d\n" % (seed, JOBS, KILLS))
        runs = os.path.join(self.dir, "runs")
        kinds = {}  # name -> kind
        accepted = {}  # name -> id (a 201)
        specs = []
        for n in range(JOBS):
            r = rng.random()
            kind = "fail" if r < 0.1 else "retry" if r < 0.15 else "ok"
            dur = rng.uniform(1.0, 3.0) if rng.random() < 0.2 else rng.uniform(0.0, 0.3)
            code = 0 if kind == "ok" else 3
            script = ('echo "$GALVANI_JOB_ID" >> %s; echo "::progress 10"; sleep %.2f; echo "::progress 90"; '
                      "exit %d" % (runs, dur, code))
            spec = {"name": "t%d" % n, "command": ["/bin/sh", "-c", script], "env": ENV}
            if kind == "retry":
                spec.update(max_retries=1, retry_backoff=0.05)
            kinds[spec["name"]] = kind
            specs.append(spec)

        stop = threading.Event()

        def submit():
            for spec in specs:
                while not stop.is_set():
                    got = self.post(spec)  # may land on a dying or restarting daemon
                    if got is None:  # not taken: the daemon is down, try again
                        time.sleep(0.02)
                        continue
                    if got != "unknown":
                        accepted[spec["name"]] = got["id"]
                    break
                time.sleep(rng.uniform(0, 0.01))

        t = threading.Thread(target=submit, daemon=True)
        t.start()
        kill_times = []
        logs = []
        for k in range(KILLS):
            time.sleep(rng.uniform(0.3, 2.0))
            # Anywhere: mid-request, mid-spawn, mid-exit, mid-commit.
            self.d.proc.send_signal(signal.SIGKILL)
            self.d.proc.wait(10)
            self.d.pump.join(60)  # the rest of its log (a deadline, generous)
            self.d.proc.stderr.close()
            logs.append(self.d.log())
            self.d.lines = []
            time.sleep(rng.uniform(0, 0.5))  # down for a while: some jobs end meanwhile
            t0 = time.monotonic()
            self.d.start()
            kill_times.append(time.monotonic() - t0)
        t.join(300)  # deadlines here end a stuck run; a busy machine is slow, not wrong
        self.assertFalse(t.is_alive(), "the submitter did not finish")

        db_path = os.path.join(self.dir, "galvani.db")

        def all_finished():
            n = storedb.execute(db_path, "SELECT count(*) FROM jobs WHERE status IN ('queued','running','paused')")
            return n[0][0] == 0

        wait_for(all_finished, timeout=300, interval=0.2, what="every job to finish")
        self.assertEqual(self.d.stop(), 0)
        logs.append(self.d.log())
        text = "".join(logs)
        events = {k: text.count(k) for k in ("job.adopted", "job.exit_replayed", "now=queued", "job.shim_lost")}
        # No shim is ever killed here: a lost supervisor would be a bug.
        self.assertEqual(events["job.shim_lost"], 0)

        rows = storedb.execute(db_path, "SELECT id, name, status, exit_status, attempts FROM jobs")
        if not storedb.ON_POSTGRES:  # SQLite's own check of its file
            self.assertEqual(storedb.execute(db_path, "PRAGMA integrity_check"), [("ok",)])
        with open(runs) as f:
            ran = collections.Counter(int(x) for x in f.read().split())
        by_name = collections.defaultdict(list)
        for row in rows:
            by_name[row[1]].append(row)
        for name, job_id in accepted.items():
            self.assertEqual([r[0] for r in by_name[name]], [job_id], "job %s (201 id %d)" % (name, job_id))
        problems = []
        for job_id, name, status, exit_status, attempts in rows:
            self.assertEqual(len(by_name[name]), 1, "%s stored twice" % name)
            want = {"ok": ("succeeded", 0, 1), "fail": ("failed", 3, 1), "retry": ("failed", 3, 2)}[kinds[name]]
            if (status, exit_status, attempts) != want or ran[job_id] != want[2]:
                problems.append("job %d (%s, %s): %s exit %s attempts %s, ran %d times; want %s" %
                                (job_id, name, kinds[name], status, exit_status, attempts, ran[job_id], want))
        stored = {r[0] for r in rows}
        problems += ["job %d ran but is not stored" % i for i in ran if i not in stored]
        if problems:  # what each life of galvanid said about those jobs
            bad = {int(p.split()[1]) for p in problems if p.split()[1].isdigit()}
            for life, lines in enumerate(logs):
                for line in lines.splitlines():
                    if any(("job=%d " % i) in line + " " for i in bad):
                        sys.stderr.write("[torture] life %d: %s\n" % (life, line))
        self.assertEqual(problems, [], "seed %d" % seed)
        self.assertEqual(os.listdir(os.path.join(self.dir, "galvani.db.run")), [])
        sys.stderr.write("[torture] %d stored, %d with a 201, %d runs; restart to listening: max %.0f ms; %s\n"
                         % (len(rows), len(accepted), sum(ran.values()), max(kill_times) * 1000, events))


if __name__ == "__main__":
    unittest.main(verbosity=2)
