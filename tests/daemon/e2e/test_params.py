#!/usr/bin/python3
"""Live params with a record, and the metric history, against the real
galvanid (docs/api.md: PATCH /jobs/{id}/params, GET .../params/history,
GET .../metrics; docs/protocol.md: "params N {json}" / "ack params N").

- params reach a cooperative job as "params N {json}"; "ack params N" moves
  params_applied and stamps applied_at; the old "ack params" means the
  latest; a stop-mode job is sent nothing and its changes stay unapplied;
- the history: every change in order with revision, patch, who ("local", or
  "token" with --token-file), at, applied_at; the newest 1000 kept, also
  across a restart;
- params_schema: a bad schema is 400, initial params that break it 422, a
  patch that breaks it 422 naming field and rule — and nothing changes;
- the metric history: ?since / ?name (bad values 400), the bound holds for a
  job reporting thousands of points, it survives SIGTERM and kill -9 (what
  the store had committed, which the test reads from the file itself), and
  deleting the job deletes it;
- a full disk (the fault-injecting VFS): a params change is 503 and changes
  nothing, points reported meanwhile are served from memory and stored once
  the disk takes writes again;
- examples/train.py, run short: an lr change mid-run is acknowledged and
  visible in its metric history;
- the CLI (when GALVANI_CLI is set): set prints the revision, show the
  params_revision / params_applied, params --history the table.

Run with GALVANID=/path/to/galvanid (CTest sets it, and GALVANI_CLI).
"""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import Daemon, DaemonTest, read, wait_for  # noqa: E402
from test_faults import FaultTest  # noqa: E402
import storedb  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin"}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
TRAIN = os.path.join(ROOT, "examples", "train.py")
CLI = os.environ.get("GALVANI_CLI")

# A cooperative job: every control line goes to a file; "params N {json}" is
# acknowledged as "ack params N" (or "ack params" when the file `oldstyle`
# exists), "cancel" ends it.
COOP = """#!/bin/sh
fd=$GALVANI_CONTROL_FD
echo "::progress 1" >&$fd
while read -r cmd rev rest <&$fd; do
  echo "$cmd $rev $rest" >> %(dir)s/lines
  case "$cmd" in
    params) if [ -e %(dir)s/oldstyle ]; then echo "ack params" >&$fd; else echo "ack params $rev" >&$fd; fi ;;
    cancel) echo "ack cancel" >&$fd; exit 0 ;;
  esac
done
"""


class ParamsTest(DaemonTest):
    def coop(self, **spec):
        script = self.script("coop.sh", COOP % {"dir": self.dir})
        job = self.d.create(command=[script], pause_mode="cooperative", env=ENV, **spec)
        wait_for(lambda: self.d.job(job["id"])["current"] == 1, what="the job to run")
        return job

    def patch(self, job_id, body, want=200):
        status, _, answer = self.d.request("PATCH", "/jobs/%d/params" % job_id, body)
        self.assertEqual(status, want, answer)
        return answer

    def history(self, job_id):
        status, _, answer = self.d.request("GET", "/jobs/%d/params/history" % job_id)
        self.assertEqual(status, 200, answer)
        return answer

    def cancel(self, job_id):
        self.d.request("POST", "/jobs/%d/cancel" % job_id)
        self.d.wait_status(job_id, "cancelled", "succeeded")

    def test_params_reach_a_cooperative_job_and_are_acknowledged_by_revision(self):
        job = self.coop(params={"lr": 0.1})
        self.assertEqual((job["params_revision"], job["params_applied"]), (0, 0))
        j = self.patch(job["id"], {"lr": 0.2})
        self.assertEqual(j["params_revision"], 1)
        wait_for(lambda: self.d.job(job["id"])["params_applied"] == 1, what="ack of revision 1")
        j = self.patch(job["id"], {"momentum": 0.9})
        self.assertEqual(j["params_revision"], 2)
        wait_for(lambda: self.d.job(job["id"])["params_applied"] == 2, what="ack of revision 2")
        lines = read(os.path.join(self.dir, "lines")).splitlines()
        self.assertEqual(lines[0].split(" ", 2)[:2], ["params", "1"])
        self.assertEqual(json.loads(lines[0].split(" ", 2)[2]), {"lr": 0.2})
        self.assertEqual(json.loads(lines[1].split(" ", 2)[2]), {"lr": 0.2, "momentum": 0.9})
        # The old "ack params" (no revision) means the latest.
        open(os.path.join(self.dir, "oldstyle"), "w").close()
        self.patch(job["id"], {"lr": 0.3})
        wait_for(lambda: self.d.job(job["id"])["params_applied"] == 3, what="an old-style ack")
        h = self.history(job["id"])
        self.assertTrue(all(e["applied_at"] for e in h["history"]), h)
        self.cancel(job["id"])

    def test_history_content_and_order(self):
        job = self.coop()
        patches = [{"lr": 0.1}, {"lr": 0.05, "mode": "safe"}, {"mode": None}]
        for p in patches:
            self.patch(job["id"], p)
        wait_for(lambda: self.d.job(job["id"])["params_applied"] == 3, what="acks")
        h = self.history(job["id"])
        self.assertEqual((h["params_revision"], h["params_applied"]), (3, 3))
        self.assertEqual([e["revision"] for e in h["history"]], [1, 2, 3])
        self.assertEqual([e["patch"] for e in h["history"]], patches)
        self.assertEqual({e["who"] for e in h["history"]}, {"local"})
        ats = [e["at"] for e in h["history"]]
        self.assertEqual(ats, sorted(ats))
        for e in h["history"]:
            self.assertRegex(e["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertGreaterEqual(e["applied_at"], e["at"])
        self.assertEqual(self.d.job(job["id"])["params"], {"lr": 0.05})
        self.cancel(job["id"])
        # A finished job takes no params (409) and its history stays.
        self.patch(job["id"], {"lr": 1}, want=409)
        self.assertEqual(self.history(job["id"])["params_revision"], 3)

    def test_history_is_bounded_and_survives_a_restart(self):
        job = self.d.create(command=["sleep", "3600"], env=ENV)
        for i in range(1, 1006):
            self.patch(job["id"], {"step": i})
        h = self.history(job["id"])
        # 1000 kept; the 1001st change dropped the oldest 100; 4 more since.
        self.assertEqual(h["params_revision"], 1005)
        self.assertEqual([e["revision"] for e in h["history"]], list(range(101, 1006)))
        self.assertEqual(h["history"][-1]["patch"], {"step": 1005})
        db = os.path.join(self.dir, "galvani.db")
        rows = storedb.execute(db, "SELECT MIN(revision), MAX(revision), COUNT(*) FROM params_history WHERE job_id = ?",
                              (job["id"],))[0]
        self.assertEqual(rows, (101, 1005, 905))
        self.d.stop()
        self.d = Daemon(self.dir)
        self.assertEqual(self.history(job["id"]), h)
        self.assertEqual(self.patch(job["id"], {"step": 0})["params_revision"], 1006)
        self.cancel(job["id"])

    def test_stop_mode_job_is_sent_nothing_and_applies_nothing(self):
        script = self.script("quiet.sh", "#!/bin/sh\necho ::progress 1\nexec sleep 3600\n")
        job = self.d.create(command=[script], env=ENV)
        wait_for(lambda: self.d.job(job["id"])["current"] == 1, what="the job to run")
        self.assertEqual(self.patch(job["id"], {"lr": 0.2})["params_revision"], 1)
        h = self.history(job["id"])
        self.assertEqual(h["params_applied"], 0)
        self.assertIsNone(h["history"][0]["applied_at"])
        self.cancel(job["id"])

    def test_schema_violations_are_422_and_change_nothing(self):
        schema = {"lr": {"type": "number", "min": 0, "max": 1}, "mode": {"enum": ["fast", "safe"]},
                  "epochs": {"type": "integer", "required": True}}
        job = self.coop(params={"lr": 0.1, "epochs": 3}, params_schema=schema)
        self.assertEqual(job["params_schema"], schema)
        self.patch(job["id"], {"lr": 0.5, "mode": "fast"})
        before = wait_for(lambda: (lambda j: j if j["params_applied"] == 1 else None)(self.d.job(job["id"])),
                          what="the ack of revision 1")
        cases = [({"lr": 1.5}, "lr", "max"), ({"lr": -1}, "lr", "min"), ({"lr": "x"}, "lr", "type"),
                 ({"mode": "slow"}, "mode", "enum"), ({"epochs": 2.5}, "epochs", "type"),
                 ({"epochs": None}, "epochs", "required"), ({"lR": 0.1}, "lR", "unknown"),
                 ({"lr": 0.2, "mode": "slow"}, "mode", "enum")]
        for body, field, rule in cases:
            err = self.patch(job["id"], body, want=422)["error"]
            self.assertEqual((err["code"], err["field"], err["rule"]), ("invalid_params", field, rule), err)
            self.assertIn('"%s"' % field, err["message"])
        after = self.d.job(job["id"])
        for k in ("params", "params_revision", "params_applied"):
            self.assertEqual(before[k], after[k])
        self.assertEqual(len(self.history(job["id"])["history"]), 1)
        self.cancel(job["id"])

    def test_bad_schema_and_bad_initial_params_create_nothing(self):
        total = self.d.request("GET", "/jobs")[2]["total"]
        bad = [({"lr": {"type": "float"}}, {}, 400, "invalid_spec"),
               ({"lr": {"min": 1, "max": 0}}, {}, 400, "invalid_spec"),
               ({"lr": {"minimum": 0}}, {}, 400, "invalid_spec"),
               ("lr", {}, 400, "invalid_spec"),
               ({"lr": {"type": "number", "required": True}}, {}, 422, "invalid_params"),
               ({"lr": {"type": "number", "max": 1}}, {"lr": 2}, 422, "invalid_params")]
        for schema, params, status, code in bad:
            s, _, body = self.d.request("POST", "/jobs", {"command": ["true"], "params_schema": schema,
                                                          "params": params})
            self.assertEqual((s, body["error"]["code"]), (status, code), body)
        self.assertEqual(self.d.request("GET", "/jobs")[2]["total"], total)


def metric_rows(db, job_id):
    """Rows of the job's metric history in the store, read from the file by
    another connection: what a crash now would keep."""
    return storedb.execute(db, "SELECT COUNT(*) FROM metric_points WHERE job_id = ?", (job_id,))[0][0]


class SmallBound(DaemonTest):
    extra_args = ("--metric-points", "10")

    def test_metric_points_flag(self):
        script = self.script("r.sh", "#!/bin/sh\ni=0\nwhile [ $i -lt 100 ]; do i=$((i+1)); "
                                     "echo \"::metric m $i\"; done\n")
        job = self.d.create(command=[script], env=ENV)
        self.d.wait_status(job["id"], "succeeded")
        m = self.d.request("GET", "/jobs/%d/metrics" % job["id"])[2]["metrics"]["m"]
        self.assertLessEqual(len(m), 10)
        self.assertEqual((m[0][1], m[-1][1]), (1, 100))
        for bad in ("3", "x", "100001"):
            p = subprocess.run([os.environ.get("GALVANID", "galvanid"), "--metric-points", bad], capture_output=True,
                               text=True, timeout=20)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--metric-points takes a number of points", p.stderr)


class MetricHistory(DaemonTest):
    def reporter(self, n, name="loss", then="exec sleep 3600"):
        return self.script("report-%s-%d.sh" % (name, n), """#!/bin/sh
i=0
while [ $i -lt %d ]; do i=$((i+1)); echo "metric %s $i" >&$GALVANI_CONTROL_FD; done
echo "metric acc 0.5" >&$GALVANI_CONTROL_FD
echo "progress 100" >&$GALVANI_CONTROL_FD
%s
""" % (n, name, then))

    def metrics(self, job_id, query=""):
        status, _, body = self.d.request("GET", "/jobs/%d/metrics%s" % (job_id, query))
        self.assertEqual(status, 200, body)
        return body["metrics"]

    def test_filters_and_bad_queries(self):
        job = self.d.create(command=[self.reporter(50)], env=ENV)
        wait_for(lambda: self.d.job(job["id"])["progress"] == 100, what="the reports")
        m = self.metrics(job["id"])
        self.assertEqual(sorted(m), ["acc", "loss"])
        self.assertEqual([v for _, v in m["loss"]], list(range(1, 51)))
        ts = [t for t, _ in m["loss"]]
        self.assertEqual(ts, sorted(ts))
        self.assertEqual(self.metrics(job["id"], "?name=acc"), {"acc": m["acc"]})
        self.assertEqual(self.metrics(job["id"], "?name=nope"), {})
        mid = ts[25]
        since = self.metrics(job["id"], "?since=%d&name=loss" % mid)["loss"]
        self.assertEqual(since, [p for p in m["loss"] if p[0] >= mid])
        self.assertEqual(self.metrics(job["id"], "?since=%d" % (ts[-1] + 10**7))["loss"], [])
        for q in ("?since=abc", "?since=-5", "?since=1.5", "?name=", "?limit=3", "?since="):
            status, _, body = self.d.request("GET", "/jobs/%d/metrics%s" % (job["id"], q))
            self.assertEqual((status, body["error"]["code"]), (400, "invalid_query"), (q, body))
        self.assertEqual(self.d.request("GET", "/jobs/999/metrics")[0], 404)
        self.assertEqual(self.d.request("POST", "/jobs/%d/metrics" % job["id"])[0], 405)
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])

    def test_bound_holds_for_many_points(self):
        n = 3000  # with the default bound, 512
        job = self.d.create(command=[self.reporter(n, then="exit 0")], env=ENV)
        self.d.wait_status(job["id"], "succeeded")
        loss = self.metrics(job["id"])["loss"]
        self.assertLessEqual(len(loss), 512)  # the default bound
        self.assertGreater(len(loss), 256)
        self.assertEqual(loss[0][1], 1)        # the first point is kept as it was
        self.assertEqual(loss[-1][1], n)       # the newest ones are exact
        self.assertEqual([v for _, v in loss[-256:]], list(range(n - 255, n + 1)))
        vals = [v for _, v in loss]
        self.assertEqual(vals, sorted(vals))   # merged points are means: still increasing

    def survives(self, sig):
        job = self.d.create(command=[self.reporter(700)], env=ENV)
        wait_for(lambda: self.d.job(job["id"])["progress"] == 100, what="the reports")
        before = self.metrics(job["id"])
        kept = len(before["loss"]) + len(before["acc"])
        self.assertTrue(256 < len(before["loss"]) <= 512, len(before["loss"]))  # it was downsampled
        db = os.path.join(self.dir, "galvani.db")
        if sig == signal.SIGKILL:
            # kill -9 keeps what the store committed (docs/guarantees.md): wait
            # until the write-behind has committed every point, then kill.
            wait_for(lambda: metric_rows(db, job["id"]) == kept, what="the points to be committed")
        self.d.stop(sig)
        self.d = Daemon(self.dir)
        self.assertEqual(self.metrics(job["id"]), before)
        # The series goes on after the restart (the job was re-adopted).
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.d.wait_status(job["id"], "cancelled")
        return job, db

    def test_survives_sigterm(self):
        self.survives(signal.SIGTERM)

    def test_survives_kill9_and_delete_removes_it(self):
        job, db = self.survives(signal.SIGKILL)
        # 409 while its process is still being stopped: wait for the 204.
        wait_for(lambda: self.d.request("DELETE", "/jobs/%d" % job["id"])[0] == 204, what="the delete")
        self.assertEqual(metric_rows(db, job["id"]), 0)


@unittest.skipIf(storedb.ON_POSTGRES, storedb.SQLITE_ONLY)
class DiskFull(FaultTest):
    def test_params_refused_and_points_kept_through_a_full_disk(self):
        coop = self.script("coop.sh", COOP % {"dir": self.dir})
        job = self.d.create(command=[coop], pause_mode="cooperative", env=ENV)
        go = os.path.join(self.dir, "go")
        # Reports 100 points once the file `go` exists (the job waits for it).
        reporter = self.script("burst.sh", """#!/bin/sh
echo "progress 1" >&$GALVANI_CONTROL_FD
while [ ! -e %s ]; do sleep 0.01; done
i=0
while [ $i -lt 100 ]; do i=$((i+1)); echo "metric loss $i" >&$GALVANI_CONTROL_FD; done
echo "progress 100" >&$GALVANI_CONTROL_FD
exec sleep 3600
""" % go)
        burst = self.d.create(command=[reporter], env=ENV)
        wait_for(lambda: self.d.job(job["id"])["current"] == 1 and self.d.job(burst["id"])["current"] == 1,
                 what="both jobs to run")
        self.assertEqual(self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.1})[0], 200)
        self.fault("full")
        self.assert_unavailable(self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.2}), "disk full")
        j = self.d.job(job["id"])
        self.assertEqual((j["params"], j["params_revision"]), ({"lr": 0.1}, 1))
        self.assertEqual(len(self.d.request("GET", "/jobs/%d/params/history" % job["id"])[2]["history"]), 1)
        open(go, "w").close()
        wait_for(lambda: self.d.job(burst["id"])["current"] == 100, what="the burst")
        served = self.d.request("GET", "/jobs/%d/metrics" % burst["id"])[2]["metrics"]["loss"]
        self.assertEqual([v for _, v in served], list(range(1, 101)))  # from memory
        self.assertEqual(metric_rows(self.db, burst["id"]), 0)
        self.fault("")
        self.wait_recovered()
        wait_for(lambda: metric_rows(self.db, burst["id"]) == 100, what="the points to be stored after the fault")
        self.assertEqual(self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.3})[2]["params_revision"], 2)
        rows = storedb.execute(self.db, "SELECT revision FROM params_history WHERE job_id = ? ORDER BY revision",
                              (job["id"],))
        self.assertEqual(rows, [(1,), (2,)])


class Token(DaemonTest):
    def setUp(self):
        super().setUp()
        self.d.stop()
        path = os.path.join(self.dir, "token")
        with open(path, "w") as f:
            f.write("s3cret-token\n")
        os.chmod(path, 0o600)
        self.d = Daemon(self.dir, "--token-file", path)

    def test_who_is_token(self):
        auth = {"Authorization": "Bearer s3cret-token"}
        s, _, job = self.d.request("POST", "/jobs", {"command": ["sleep", "3600"], "env": ENV}, headers=auth)
        self.assertEqual(s, 201, job)
        s, _, _ = self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 1}, headers=auth)
        self.assertEqual(s, 200)
        s, _, h = self.d.request("GET", "/jobs/%d/params/history" % job["id"], headers=auth)
        self.assertEqual(h["history"][0]["who"], "token")
        self.assertEqual(self.d.request("GET", "/jobs/%d/params/history" % job["id"])[0], 401)
        self.d.request("POST", "/jobs/%d/cancel" % job["id"], headers=auth)


class Train(DaemonTest):
    # Enough points that nothing is merged however long a loaded machine
    # takes between the steps below: the assertions read exact reports.
    extra_args = ("--metric-points", "100000")

    def test_lr_change_mid_run_is_acknowledged_and_visible(self):
        # Many short steps: the run outlasts the test, which cancels it.
        job = self.d.create(command=["/usr/bin/python3", TRAIN, "--steps", "100000", "--step-ms", "5"],
                            pause_mode="cooperative", params={"lr": 0.01, "momentum": 0.5}, env=ENV)
        wait_for(lambda: self.d.job(job["id"])["current"] >= 20, what="20 training steps")
        s, _, patched = self.d.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.3})
        self.assertEqual((s, patched["params_revision"]), (200, 1), patched)
        wait_for(lambda: self.d.job(job["id"])["params_applied"] == 1, what="train.py to ack revision 1")
        wait_for(lambda: self.d.job(job["id"])["metrics"].get("lr") == 0.3, what="the new lr reported")
        steps_at_change = self.d.job(job["id"])["current"]
        wait_for(lambda: self.d.job(job["id"])["current"] >= steps_at_change + 20, what="20 more steps")
        h = self.d.request("GET", "/jobs/%d/params/history" % job["id"])[2]["history"]
        self.assertIsNotNone(h[0]["applied_at"])
        m = self.d.request("GET", "/jobs/%d/metrics" % job["id"])[2]["metrics"]
        lrs = [v for _, v in m["lr"]]
        first = lrs.index(0.3)
        self.assertGreater(first, 0)
        self.assertEqual(set(lrs[:first]), {0.01})
        self.assertEqual(set(lrs[first:]), {0.3})
        # The loss falls faster after the change: compare the same number of
        # steps before and after it (ratios: the loss only decreases here).
        t_change = m["lr"][first][0]
        before = [v for t, v in m["loss"] if t < t_change][-10:]
        after = [v for t, v in m["loss"] if t >= t_change][:10]
        self.assertLess(after[-1] / after[0], before[-1] / before[0])
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])
        self.d.wait_status(job["id"], "cancelled")


@unittest.skipUnless(CLI, "GALVANI_CLI is not set")
class Cli(DaemonTest):
    def cli(self, *args):
        p = subprocess.run([CLI, "--server", self.d.url] + list(args), capture_output=True, text=True, timeout=20)
        return p.returncode, p.stdout, p.stderr

    def test_set_show_and_history(self):
        job = self.d.create(command=["sleep", "3600"], env=ENV,
                            params_schema={"lr": {"type": "number", "max": 1}})
        rc, out, _ = self.cli("set", str(job["id"]), "lr=0.5")
        self.assertEqual((rc, out), (0, 'job %d params: {"lr":0.5} (revision 1)\n' % job["id"]))
        rc, out, err = self.cli("set", str(job["id"]), "lr=5")
        self.assertEqual(rc, 1)
        self.assertIn('"lr"', err)
        self.assertIn("max", err)
        rc, out, _ = self.cli("show", str(job["id"]))
        self.assertIn("params_revision 1\n", out)
        self.assertIn("params_applied 0\n", out)
        rc, out, _ = self.cli("params", "--history", str(job["id"]))
        self.assertEqual(rc, 0)
        rows = out.splitlines()
        self.assertTrue(rows[0].startswith("REV"), out)
        self.assertRegex(rows[1], r'^1\s+\S+Z\s+local\s+-\s+\{"lr":0.5\}$')
        self.assertEqual(rows[-1], "revision 1, applied 0")
        rc, out, _ = self.cli("params", str(job["id"]))
        self.assertEqual(out, 'job %d params: {"lr":0.5}\nrevision 1, applied 0\n' % job["id"])
        self.assertEqual(self.cli("params", "x")[0], 2)
        self.assertEqual(self.cli("params", "--bogus", "1")[0], 2)
        self.d.request("POST", "/jobs/%d/cancel" % job["id"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
