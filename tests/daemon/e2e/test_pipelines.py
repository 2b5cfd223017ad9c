#!/usr/bin/python3
"""Pipelines against the real galvanid (docs/api.md, "Pipelines").

Every step here runs a script that waits for a file the test creates
("go-NAME", holding the exit code), so the test decides when each step ends
and asserts what the daemon did, never how fast.

- dependency order: a step's job exists only once every step it needs
  succeeded; two steps that need the same one run at the same time; the
  pipeline's progress is weighted; step jobs name their pipeline;
- on_failure "skip": the failed step's dependents are skipped, the rest runs
  on, the pipeline ends failed; retry re-runs the step, then its dependents;
- on_failure "cancel": a failure cancels the whole pipeline;
- pause holds steps not yet started (a step that became due while paused
  gets no job until resume) and pauses running ones; cancel ends all;
- rules on a pipeline: steps.NAME.metrics.X pauses it, once per crossing;
- invalid pipelines and rules get precise 400s and create nothing; 404s and
  409s for what the state refuses;
- kill -9 of galvanid: a step that ended while galvanid was down is seen on
  restart, its dependents start exactly once, a paused pipeline stays
  paused and starts nothing;
- the /ws/jobs stream carries the pipelines;
- examples/ci-pipeline.json runs (shortened), and its rule pauses it when
  the test step reports failed_tests >= 1.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import asyncio
import json
import os
import signal
import sys
import unittest

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import DEADLINE, DaemonTest, wait_for  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin"}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
EXAMPLE = os.path.abspath(os.path.join(ROOT, "examples", "ci-pipeline.json"))

# Marks that it started, waits for its go file, exits with the code in it.
GATED = ('touch %(dir)s/started-%(name)s; while [ ! -s %(dir)s/go-%(name)s ]; do sleep 0.02; done; '
         'exit "$(cat %(dir)s/go-%(name)s)"')

# The same, cooperative: acknowledges pause and resume, so it can end while
# its pipeline is paused.
COOP = """#!/bin/bash
fd=$GALVANI_CONTROL_FD
touch %(dir)s/started-%(name)s
while [ ! -s %(dir)s/go-%(name)s ]; do
  if read -t 0.05 -r cmd args <&"$fd"; then
    case $cmd in pause|resume) echo "ack $cmd" >&"$fd" ;; cancel) echo "ack cancel" >&"$fd"; exit 0 ;; esac
  fi
done
exit "$(cat %(dir)s/go-%(name)s)"
"""


class PipelineBase(DaemonTest):
    def step(self, name, needs=(), code_file=None, **extra):
        s = {"name": name, "command": ["sh", "-c", GATED % {"dir": self.dir, "name": code_file or name}], "env": ENV}
        if needs:
            s["needs"] = list(needs)
        s.update(extra)
        return s

    def coop_step(self, name, needs=()):
        path = self.script("coop-%s.sh" % name, COOP % {"dir": self.dir, "name": name})
        s = {"name": name, "command": [path], "env": ENV, "pause_mode": "cooperative"}
        if needs:
            s["needs"] = list(needs)
        return s

    def go(self, name, code=0):
        tmp = os.path.join(self.dir, "go-%s.tmp" % name)
        with open(tmp, "w") as f:
            f.write("%d\n" % code)
        os.rename(tmp, os.path.join(self.dir, "go-%s" % name))

    def started(self, name):
        return os.path.exists(os.path.join(self.dir, "started-%s" % name))

    def create(self, want=201, **body):
        status, headers, pl = self.d.request("POST", "/pipelines", body)
        self.assertEqual(status, want, pl)
        if want == 201:
            self.assertEqual({k.lower(): v for k, v in headers.items()}.get("location"), "/pipelines/%d" % pl["id"])
        return pl

    def get(self, pid):
        status, _, pl = self.d.request("GET", "/pipelines/%d" % pid)
        self.assertEqual(status, 200, pl)
        return pl

    def post(self, path, want=200):
        status, _, body = self.d.request("POST", path)
        self.assertEqual(status, want, body)
        return body

    @staticmethod
    def steps(pl):
        return {s["name"]: s for s in pl["steps"]}

    def wait_step(self, pid, name, *statuses):
        return wait_for(lambda: (lambda s: s if s["status"] in statuses else None)(self.steps(self.get(pid))[name]),
                        what="step %s of pipeline %d to be %s" % (name, pid, "/".join(statuses)))

    def wait_pipeline(self, pid, *statuses):
        return wait_for(lambda: (lambda p: p if p["status"] in statuses else None)(self.get(pid)),
                        what="pipeline %d to be %s" % (pid, "/".join(statuses)))


class PipelineOrder(PipelineBase):
    def test_dependency_order_parallel_steps_and_weighted_progress(self):
        pl = self.create(name="ci", steps=[self.step("build"), self.step("unit", ["build"]),
                                           self.step("lint", ["build"]),
                                           self.step("package", ["unit", "lint"], weight=2)])
        pid = pl["id"]
        steps = self.steps(pl)
        self.assertEqual(pl["status"], "running")
        self.assertEqual(pl["on_failure"], "skip")
        self.assertIsInstance(steps["build"]["job"], int)  # roots start at once: the 201 shows their jobs
        for name in ("unit", "lint", "package"):
            self.assertEqual((steps[name]["status"], steps[name]["job"], steps[name]["jobs"]), ("waiting", None, []))
        self.assertEqual(steps["package"]["needs"], ["unit", "lint"])
        self.assertEqual(steps["package"]["weight"], 2)
        build = self.d.job(steps["build"]["job"])
        self.assertEqual(build["name"], "ci/build")
        self.assertEqual(build["pipeline"], {"id": pid, "step": "build", "generation": 0})
        self.d.wait_status(build["id"], "running")
        # A step's job is not created before its needs succeeded.
        wait_for(lambda: self.started("build"), what="build to start")
        self.assertFalse(self.started("unit") or self.started("lint"))
        self.assertEqual(self.steps(self.get(pid))["unit"]["job"], None)

        self.go("build")
        # unit and lint both run: both started before either was let go.
        wait_for(lambda: self.started("unit") and self.started("lint"), what="unit and lint to run together")
        p = self.get(pid)
        s = self.steps(p)
        self.assertEqual((s["unit"]["status"], s["lint"]["status"]), ("running", "running"))
        self.assertEqual(s["package"]["job"], None)
        self.assertEqual(p["progress"], 20)  # build 100 % x 1 of the weights 1+1+1+2
        self.go("unit")
        self.wait_step(pid, "unit", "succeeded")
        self.assertEqual(self.steps(self.get(pid))["package"]["status"], "waiting")
        self.assertFalse(self.started("package"))
        self.go("lint")
        self.wait_step(pid, "package", "running")
        self.go("package")
        p = self.wait_pipeline(pid, "succeeded")
        self.assertEqual(p["progress"], 100)
        self.assertIsNotNone(p["finished_at"])
        jobs = [s["job"] for s in p["steps"]]
        self.assertEqual(len(set(jobs)), 4)

        # Its jobs belong to it: not deleted one by one, gone with it.
        status, _, body = self.d.request("DELETE", "/jobs/%d" % jobs[0])
        self.assertEqual(status, 409, body)
        self.assertIn("step of pipeline %d" % pid, body["error"]["message"])
        status, _, body = self.d.request("GET", "/pipelines")
        self.assertEqual((status, body["total"], body["pipelines"][0]["id"]), (200, 1, pid))
        self.assertEqual(self.d.request("DELETE", "/pipelines/%d" % pid)[0], 204)
        self.assertEqual(self.d.request("GET", "/pipelines/%d" % pid)[0], 404)
        for j in jobs:
            self.assertEqual(self.d.request("GET", "/jobs/%d" % j)[0], 404)


class PipelineFailures(PipelineBase):
    def test_skip_policy_then_retry(self):
        pl = self.create(name="skip", steps=[self.step("a"), self.step("b", ["a"]), self.step("c", ["b"]),
                                             self.step("other")])
        pid = pl["id"]
        first_a = self.steps(pl)["a"]["job"]
        self.go("a", 3)
        self.wait_step(pid, "a", "failed")
        p = self.get(pid)
        s = self.steps(p)
        self.assertEqual((s["b"]["status"], s["c"]["status"]), ("skipped", "skipped"))
        self.assertEqual(p["status"], "running")  # "other" still runs
        self.go("other")
        p = self.wait_pipeline(pid, "failed")
        self.assertEqual(self.steps(p)["other"]["status"], "succeeded")

        # Retry a: it runs again (a new job), then its dependents.
        self.post("/pipelines/%d/steps/b/retry" % pid, 409)  # skipped: retry the failed step
        os.unlink(os.path.join(self.dir, "go-a"))
        p = self.post("/pipelines/%d/steps/a/retry" % pid)
        self.assertEqual(p["status"], "running")
        a = self.wait_step(pid, "a", "running")
        self.assertNotEqual(a["job"], first_a)
        self.assertEqual(a["jobs"], [first_a, a["job"]])
        self.assertEqual(self.d.job(a["job"])["pipeline"]["generation"], 1)
        self.assertEqual(self.steps(self.get(pid))["b"]["status"], "waiting")
        self.go("a")
        self.go("b")
        self.go("c")
        p = self.wait_pipeline(pid, "succeeded")
        self.assertEqual(self.steps(p)["other"]["jobs"], [self.steps(p)["other"]["job"]])  # not re-run

    def test_cancel_policy_cancels_everything(self):
        pl = self.create(name="strict", on_failure="cancel",
                         steps=[self.step("x"), self.step("y"), self.step("after", ["x"])])
        pid = pl["id"]
        y = self.steps(pl)["y"]["job"]
        self.d.wait_status(y, "running")
        self.go("x", 1)
        p = self.wait_pipeline(pid, "failed")
        self.d.wait_status(y, "cancelled")
        s = self.steps(self.get(pid))
        self.assertEqual((s["x"]["status"], s["y"]["status"], s["after"]["status"]),
                         ("failed", "cancelled", "cancelled"))
        self.assertEqual(s["after"]["job"], None)
        self.post("/pipelines/%d/cancel" % pid, 409)

    def test_cancel_request_and_retry_after_it(self):
        pl = self.create(name="stop", steps=[self.step("one"), self.step("two", ["one"])])
        pid = pl["id"]
        one = self.steps(pl)["one"]["job"]
        self.d.wait_status(one, "running")
        p = self.post("/pipelines/%d/cancel" % pid)
        self.assertEqual(p["status"], "cancelled")
        self.d.wait_status(one, "cancelled")
        self.assertEqual(self.steps(self.get(pid))["two"]["status"], "cancelled")
        self.post("/pipelines/%d/cancel" % pid, 409)
        self.post("/pipelines/%d/pause" % pid, 409)
        self.post("/pipelines/%d/steps/one/retry" % pid)
        self.wait_step(pid, "one", "running")
        self.go("one")
        self.go("two")
        self.wait_pipeline(pid, "succeeded")


class PipelinePause(PipelineBase):
    def test_pause_holds_steps_not_started(self):
        pl = self.create(name="held", steps=[self.coop_step("first"), self.step("second", ["first"])])
        pid = pl["id"]
        first = self.steps(pl)["first"]["job"]
        self.d.wait_status(first, "running")
        wait_for(lambda: self.started("first"), what="the first step to run")
        p = self.post("/pipelines/%d/pause" % pid)
        self.assertEqual((p["status"], p["paused"]), ("paused", True))
        self.d.wait_status(first, "paused")
        self.post("/pipelines/%d/pause" % pid, 409)
        # It ends while the pipeline is paused: the next step is due, held.
        self.go("first")
        self.d.wait_status(first, "succeeded")
        p = self.get(pid)
        s = self.steps(p)
        self.assertEqual((p["status"], s["second"]["status"], s["second"]["job"]), ("paused", "waiting", None))
        self.assertFalse(self.started("second"))
        p = self.post("/pipelines/%d/resume" % pid)
        self.assertEqual(p["paused"], False)
        self.wait_step(pid, "second", "running")
        self.post("/pipelines/%d/resume" % pid, 409)
        self.go("second")
        self.wait_pipeline(pid, "succeeded")

    def test_pause_pauses_running_steps(self):
        pl = self.create(name="stop-mode", steps=[self.step("long")])
        pid = pl["id"]
        job = self.steps(pl)["long"]["job"]
        self.d.wait_status(job, "running")
        self.post("/pipelines/%d/pause" % pid)
        self.d.wait_status(job, "paused")
        self.post("/pipelines/%d/resume" % pid)
        self.d.wait_status(job, "running")
        self.go("long")
        self.wait_pipeline(pid, "succeeded")


class PipelineRules(PipelineBase):
    def test_step_metric_pauses_the_pipeline_once_per_crossing(self):
        report = ('echo "::metric failed_tests 0"; while [ ! -e %(d)s/fail ]; do sleep 0.02; done; '
                  'echo "::metric failed_tests 2"; while [ ! -s %(d)s/go-test ]; do sleep 0.02; done; exit 0'
                  % {"d": self.dir})
        pl = self.create(name="ruled", steps=[{"name": "test", "command": ["sh", "-c", report], "env": ENV,
                                               "pause_mode": "stop"}, self.step("after", ["test"])],
                         rules=[{"when": "steps.test.metrics.failed_tests >= 1", "then": "pause"},
                                {"name": "told", "when": "pipeline.failed_steps >= 1", "then": "notify"}])
        pid = pl["id"]
        self.assertEqual(pl["rules"][0], {"name": "rule-1", "when": "steps.test.metrics.failed_tests >= 1",
                                          "then": "pause"})
        job = self.steps(pl)["test"]["job"]
        wait_for(lambda: self.d.job(job)["metrics"].get("failed_tests") == 0, what="failed_tests 0")
        self.assertEqual(self.get(pid)["status"], "running")
        open(os.path.join(self.dir, "fail"), "w").close()
        p = self.wait_pipeline(pid, "paused")
        self.d.wait_status(job, "paused")
        status, _, body = self.d.request("GET", "/pipelines/%d/events" % pid)
        self.assertEqual(status, 200)
        ev = body["events"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual((ev[0]["rule"], ev[0]["then"], ev[0]["outcome"]), ("rule-1", "pause", "paused"))
        self.assertEqual(ev[0]["values"], {"steps.test.metrics.failed_tests": 2})
        self.assertEqual(p["events"], 1)
        # A person resumes while the metric stays high: not paused again.
        self.go("test")
        self.post("/pipelines/%d/resume" % pid)
        self.d.wait_status(job, "succeeded")
        self.wait_step(pid, "after", "running")
        self.assertEqual(len(self.d.request("GET", "/pipelines/%d/events" % pid)[2]["events"]), 1)
        self.go("after")
        self.wait_pipeline(pid, "succeeded")


    def test_notify_fires_on_the_failure_that_finishes_the_pipeline(self):
        where = 'echo "$GALVANI_PIPELINE_ID $GALVANI_PIPELINE_STEP" > %s/where; exit 5' % self.dir
        pl = self.create(name="lone", steps=[{"name": "only", "command": ["sh", "-c", where], "env": ENV},
                                             self.step("never", ["only"])],
                         rules=[{"when": "pipeline.failed_steps >= 1", "then": "notify"},
                                {"when": "pipeline.failed_steps >= 1", "then": "pause"}])
        pid = pl["id"]
        p = self.wait_pipeline(pid, "failed")
        wait_for(lambda: self.get(pid)["events"] == 1, what="the notify rule to fire")
        ev = self.d.request("GET", "/pipelines/%d/events" % pid)[2]["events"]
        self.assertEqual([(e["rule"], e["outcome"]) for e in ev], [("rule-1", "logged")])  # pause: not on a finished one
        self.d.wait_log("rule.notify pipeline=%d" % pid)
        # the step knew where it ran
        with open(os.path.join(self.dir, "where")) as f:
            self.assertEqual(f.read().split(), [str(pid), "only"])
        self.assertEqual(self.steps(p)["never"]["status"], "skipped")


class PipelineErrors(PipelineBase):
    def refused(self, body, *fragments, status=400):
        code, _, err = self.d.request("POST", "/pipelines", body)
        self.assertEqual(code, status, err)
        for f in fragments:
            self.assertIn(f, err["error"]["message"])
        return err["error"]

    def test_invalid_pipelines_are_400_and_create_nothing(self):
        ok = self.step("a")
        e = self.refused({"steps": [dict(ok, needs=["b"]), self.step("b", ["c"]), self.step("c", ["a"])]},
                         "steps form a cycle: a needs b needs c needs a")
        self.assertEqual(e["code"], "invalid_pipeline")
        self.refused({"steps": [dict(ok, needs=["a"])]}, "steps form a cycle: a needs a")
        self.refused({"steps": [ok, self.step("t", ["bulid"])]}, 'step "t" needs "bulid", which is not a step')
        self.refused({"steps": [ok, self.step("a")]}, 'duplicate step name "a" (steps[0] and steps[1])')
        self.refused({"steps": [ok, self.step("b", ["a", "a"])]}, 'step "b" needs "a" twice')
        self.refused({"steps": []}, '"steps" must be a non-empty array')
        self.refused({"steps": [dict(ok, name="has space")]}, "steps[0] needs a \"name\" of 1 to 64")
        self.refused({"steps": [dict(ok, bogus=1)]}, 'step "a": unknown field')
        self.refused({"steps": [dict(ok, weight=0)]}, '"weight" must be a number more than 0')
        self.refused({"steps": [ok], "on_failure": "explode"}, '"on_failure" must be "skip"')
        self.refused({"steps": [ok], "extra": 1}, 'unknown field "extra"')
        e = self.refused({"steps": [ok], "rules": [{"when": "steps.a.progress >", "then": "pause"}]},
                         "column 19")
        self.assertEqual(e["column"], 19)
        self.refused({"steps": [ok], "rules": [{"when": "progress > 5", "then": "pause"}]},
                     "a pipeline's rule names the pipeline")
        self.refused({"steps": [ok], "rules": [{"when": "steps.zz.progress > 5", "then": "pause"}]},
                     'names step "zz", which is not a step')
        # ... and a job's rule cannot name steps
        code, _, err = self.d.request("POST", "/jobs", {"command": ["true"], "env": ENV,
                                                        "rules": [{"when": "pipeline.progress > 5", "then": "pause"}]})
        self.assertEqual(code, 400, err)
        self.assertIn("only in a pipeline's rules", err["error"]["message"])
        self.assertEqual(self.d.request("GET", "/pipelines")[2]["total"], 0)
        self.assertEqual(self.d.request("GET", "/jobs")[2]["total"], 0)

    def test_routes_refuse_what_does_not_exist_or_cannot_be(self):
        self.assertEqual(self.d.request("GET", "/pipelines/9")[0], 404)
        self.assertEqual(self.d.request("GET", "/pipelines/x")[0], 404)
        self.assertEqual(self.d.request("GET", "/pipelines/1/nope")[0], 404)
        self.assertEqual(self.d.request("PUT", "/pipelines")[0], 405)
        pl = self.create(steps=[self.step("a"), self.step("b", ["a"])])
        pid = pl["id"]
        self.assertEqual(pl["name"], "pipeline")
        self.assertEqual(self.d.request("GET", "/pipelines/%d/pause" % pid)[0], 405)
        self.post("/pipelines/%d/steps/zz/retry" % pid, 404)
        self.post("/pipelines/%d/steps/b/retry" % pid, 409)  # never ran
        self.post("/pipelines/%d/steps/a/retry" % pid, 409)  # running
        self.post("/pipelines/%d/resume" % pid, 409)
        status, _, body = self.d.request("DELETE", "/pipelines/%d" % pid)
        self.assertEqual(status, 409, body)
        self.assertIn("only finished pipelines can be deleted", body["error"]["message"])
        self.assertEqual(self.d.request("GET", "/pipelines?limit=x")[0], 400)
        self.go("a")
        self.go("b")
        self.wait_pipeline(pid, "succeeded")


class PipelineDurable(PipelineBase):
    def kill9_restart(self):
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait(DEADLINE)
        self.d.pump.join(DEADLINE)
        self.d.proc.stderr.close()

    def test_kill9_a_step_ends_while_down_its_dependents_start_once(self):
        pl = self.create(name="durable", steps=[self.step("a"), self.step("b", ["a"]), self.step("c", ["b"])])
        pid = pl["id"]
        a = self.steps(pl)["a"]["job"]
        self.d.wait_status(a, "running")
        wait_for(lambda: self.started("a"), what="a to run")
        self.kill9_restart()
        self.go("a")  # ends while galvanid is down
        self.d.lines = []
        self.d.start()
        self.d.wait_status(a, "succeeded")
        b = self.wait_step(pid, "b", "running")
        self.assertEqual(b["jobs"], [b["job"]])
        self.assertEqual(self.d.job(b["job"])["pipeline"], {"id": pid, "step": "b", "generation": 0})
        # Again, with b running: restart twice, b still has one job.
        wait_for(lambda: self.started("b"), what="b to run")
        for _ in range(2):
            self.kill9_restart()
            self.d.lines = []
            self.d.start()
        s = self.steps(self.get(pid))
        self.assertEqual((s["b"]["status"], s["b"]["jobs"]), ("running", [b["job"]]))
        self.go("b")
        self.go("c")
        p = self.wait_pipeline(pid, "succeeded")
        for s in p["steps"]:
            self.assertEqual(len(s["jobs"]), 1, s)
        names = [j["name"] for j in self.d.request("GET", "/jobs")[2]["jobs"]]
        self.assertEqual(sorted(names), ["durable/a", "durable/b", "durable/c"])

    def test_kill9_paused_pipeline_stays_paused_and_holds(self):
        pl = self.create(name="held", steps=[self.coop_step("first"), self.step("second", ["first"])])
        pid = pl["id"]
        first = self.steps(pl)["first"]["job"]
        self.d.wait_status(first, "running")
        self.post("/pipelines/%d/pause" % pid)
        self.d.wait_status(first, "paused")
        self.kill9_restart()
        self.go("first")
        self.d.lines = []
        self.d.start()
        self.d.wait_status(first, "succeeded")
        p = self.get(pid)
        self.assertEqual((p["status"], p["paused"], self.steps(p)["second"]["job"]), ("paused", True, None))
        self.assertFalse(self.started("second"))
        self.post("/pipelines/%d/resume" % pid)
        self.wait_step(pid, "second", "running")
        self.go("second")
        self.wait_pipeline(pid, "succeeded")


    def test_kill9_a_fired_rule_does_not_fire_again(self):
        """The latch survives: after kill -9 the rule's condition is still
        true, yet a resume is not undone by a second firing."""
        report = ('echo "::metric failed_tests 3"; while [ ! -s %(d)s/go-t ]; do sleep 0.02; done; exit 0'
                  % {"d": self.dir})
        pl = self.create(name="latched", steps=[{"name": "t", "command": ["sh", "-c", report], "env": ENV}],
                         rules=[{"when": "steps.t.metrics.failed_tests >= 1", "then": "pause"}])
        pid = pl["id"]
        self.wait_pipeline(pid, "paused")
        wait_for(lambda: self.get(pid)["events"] == 1, what="the firing to be recorded")
        self.kill9_restart()
        self.d.lines = []
        self.d.start()
        p = self.get(pid)
        self.assertEqual((p["status"], p["events"]), ("paused", 1))
        self.post("/pipelines/%d/resume" % pid)
        self.d.wait_status(self.steps(p)["t"]["job"], "running")
        self.go("t")
        p = self.wait_pipeline(pid, "succeeded", "paused")
        self.assertEqual((p["status"], p["events"]), ("succeeded", 1))


class PipelineRetention(PipelineBase):
    """--max-jobs counts a pipeline's jobs; past it the oldest finished
    pipeline goes whole, never a running one or a single step job."""
    extra_args = ("--max-jobs", "3")

    def test_oldest_finished_pipeline_goes_whole(self):
        first = self.create(name="old", steps=[self.step("a1"), self.step("a2", ["a1"])])
        self.go("a1")
        self.go("a2")
        p = self.wait_pipeline(first["id"], "succeeded")
        old_jobs = [s["job"] for s in p["steps"]]
        second = self.create(name="new", steps=[self.step("b1"), self.step("b2", ["b1"])])
        self.go("b1")
        self.wait_step(second["id"], "b2", "running")  # 4 jobs > 3: the finished pipeline goes
        wait_for(lambda: self.d.request("GET", "/pipelines/%d" % first["id"])[0] == 404,
                 what="the old pipeline to be pruned")
        for j in old_jobs:
            self.assertEqual(self.d.request("GET", "/jobs/%d" % j)[0], 404)
        # the running one and its finished step stay
        s = self.steps(self.get(second["id"]))
        self.assertEqual(self.d.job(s["b1"]["job"])["status"], "succeeded")
        self.go("b2")
        self.wait_pipeline(second["id"], "succeeded")


class PipelineStream(PipelineBase):
    def test_ws_jobs_carries_pipelines(self):
        pl = self.create(name="streamed", steps=[self.step("only")])
        pid = pl["id"]

        async def run():
            async with websockets.connect("ws://127.0.0.1:%d/ws/jobs" % self.d.port) as ws:
                snap = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                self.assertEqual(snap["type"], "snapshot")
                self.assertEqual([p["id"] for p in snap["pipelines"]], [pid])
                self.go("only")
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if msg["type"] == "pipeline" and msg["pipeline"]["status"] == "succeeded":
                        break
                self.assertEqual(self.d.request("DELETE", "/pipelines/%d" % pid)[0], 204)
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if msg["type"] == "pipeline_removed":
                        self.assertEqual(msg["id"], pid)
                        break

        asyncio.run(run())


class CiExample(PipelineBase):
    """examples/ci-pipeline.json, shortened (STEP_SECONDS), as a user runs it."""

    def example(self, failed_tests):
        with open(EXAMPLE) as f:
            body = json.load(f)
        for step in body["steps"]:
            step["env"]["STEP_SECONDS"] = "0.05"
            step["env"]["FAILED_TESTS"] = str(failed_tests)
            if failed_tests and step["name"] == "unit-tests":
                # the failures show at its 2nd of 10 steps: 16 s left for
                # the rule to pause it, however busy the machine
                step["env"]["STEP_SECONDS"] = "2"
        return body

    def test_example_runs_through(self):
        pl = self.create(**self.example(0))
        self.assertEqual([s["name"] for s in pl["steps"]], ["build", "unit-tests", "lint", "package"])
        p = self.wait_pipeline(pl["id"], "succeeded", "failed", "paused")
        self.assertEqual(p["status"], "succeeded", p)

    def test_example_rule_pauses_on_failed_tests(self):
        pl = self.create(**self.example(1))
        p = self.wait_pipeline(pl["id"], "paused", "succeeded", "failed")
        self.assertEqual(p["status"], "paused", p)
        ev = self.d.request("GET", "/pipelines/%d/events" % pl["id"])[2]["events"]
        self.assertEqual((ev[0]["rule"], ev[0]["outcome"]), ("tests-crying", "paused"))
        self.assertEqual(ev[0]["values"], {"steps.unit-tests.metrics.failed_tests": 1})
        self.assertEqual(self.steps(p)["unit-tests"]["status"], "paused")
        self.post("/pipelines/%d/cancel" % pl["id"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
