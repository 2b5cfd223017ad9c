#!/usr/bin/python3
"""`galvani pipeline` against the real galvanid (docs/api.md, "Pipelines").

run FILE.json [--follow] (a line per step change, exit 0 when the pipeline
succeeded, 1 when it failed), ls, show (steps, needs, rules, firings),
pause / resume / cancel, retry ID STEP, rm; usage errors exit 2 before
anything is sent; --json prints the daemon's answers; a refused pipeline
prints the daemon's message and exits 1.  Steps wait for files the test
creates, so the test decides when each ends.

Run with GALVANID=/path/to/galvanid GALVANI_CLI=/path/to/galvani (CTest sets
both).
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "e2e"))
from test_e2e import Daemon, end_leftover_jobs, wait_for  # noqa: E402

CLI = os.environ.get("GALVANI_CLI", "galvani")
ENV = {"PATH": "/usr/bin:/bin"}
EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                                       "ci-pipeline.json"))


class PipelineCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="galvani-cli-pl-")
        cls.dir = cls.tmp.name
        cls.d = Daemon(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        end_leftover_jobs(os.path.join(cls.dir, "galvani.db.run"))
        cls.tmp.cleanup()

    def cli(self, *args, stdin=None):
        env = dict(os.environ, GALVANI_URL=self.d.url)
        return subprocess.run([CLI] + list(args), input=stdin, capture_output=True, text=True, env=env, timeout=120)

    def gated(self, name, needs=()):
        s = {"name": name, "env": ENV,
             "command": ["sh", "-c", 'while [ ! -s %s/go-%s ]; do sleep 0.02; done; exit "$(cat %s/go-%s)"'
                         % (self.dir, name, self.dir, name)]}
        if needs:
            s["needs"] = list(needs)
        return s

    def go(self, name, code=0):
        with open(os.path.join(self.dir, "go-%s.tmp" % name), "w") as f:
            f.write("%d\n" % code)
        os.rename(os.path.join(self.dir, "go-%s.tmp" % name), os.path.join(self.dir, "go-%s" % name))

    def file(self, name, body):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(body, f)
        return path

    def pipeline(self, pid):
        return self.d.request("GET", "/pipelines/%d" % pid)[2]

    def test_run_follow_success_and_failure_exit_like_the_pipeline(self):
        with open(EXAMPLE) as f:
            body = json.load(f)
        for s in body["steps"]:
            s["env"]["STEP_SECONDS"] = "0.02"
        r = self.cli("pipeline", "run", self.file("ok.json", body), "--follow")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^pipeline \d+ ci: running")
        for step in ("build", "unit-tests", "lint", "package"):
            self.assertRegex(r.stdout, r"\n  %s +succeeded \(job \d+\)" % step)
        self.assertRegex(lines[-1], r"^pipeline \d+ ci: succeeded 100\.0%$")
        self.assertEqual(r.stdout.count("succeeded 100.0%"), 1)
        bad = {"name": "broken", "steps": [{"name": "a", "command": ["false"], "env": ENV},
                                           {"name": "b", "needs": ["a"], "command": ["true"], "env": ENV}]}
        r = self.cli("pipeline", "run", "-", "--follow", stdin=json.dumps(bad))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"\n  a +failed \(job \d+\)")
        self.assertRegex(r.stdout, r"\n  b +skipped")
        self.assertRegex(r.stdout.splitlines()[-1], r"^pipeline \d+ broken: failed")

    def test_control_show_ls_retry_rm(self):
        r = self.cli("--json", "pipeline", "run", self.file("ctl.json", {"name": "ctl", "steps": [
            self.gated("one"), self.gated("two", ["one"]), self.gated("three")],
            "rules": [{"when": "pipeline.failed_steps >= 1", "then": "notify"}]}))
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = json.loads(r.stdout)["id"]
        r = self.cli("pipeline", "pause", str(pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("paused", r.stdout)
        r = self.cli("pipeline", "pause", str(pid))
        self.assertEqual(r.returncode, 1)
        self.assertIn("paused already", r.stderr)
        self.assertEqual(self.cli("pipeline", "resume", str(pid)).returncode, 0)
        self.go("one", 4)
        # while "three" still runs, the pipeline is not finished: the rule acts
        wait_for(lambda: self.pipeline(pid)["events"] == 1, what="the notify rule to fire")
        self.go("three")
        wait_for(lambda: self.pipeline(pid)["status"] == "failed", what="the pipeline to fail")
        r = self.cli("pipeline", "show", str(pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"one +failed +\d+")
        self.assertRegex(r.stdout, r"two +skipped +- .* one")
        self.assertIn("when pipeline.failed_steps >= 1 then notify", r.stdout)
        self.assertRegex(self.cli("pipeline", "show", str(pid)).stdout, r"fired .* rule-1 +notify")
        r = self.cli("pipeline", "ls")
        self.assertRegex(r.stdout, r"\n%d +ctl +failed" % pid)
        r = self.cli("--json", "pipeline", "ls")
        self.assertIn(pid, [p["id"] for p in json.loads(r.stdout)["pipelines"]])
        os.unlink(os.path.join(self.dir, "go-one"))
        r = self.cli("pipeline", "retry", str(pid), "one")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.go("one")
        self.go("two")
        wait_for(lambda: self.pipeline(pid)["status"] == "succeeded", what="the retried pipeline to succeed")
        r = self.cli("pipeline", "rm", str(pid))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "pipeline %d deleted" % pid))
        r = self.cli("pipeline", "show", str(pid))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no pipeline %d" % pid, r.stderr)

    def test_cancel(self):
        r = self.cli("--json", "pipeline", "run", self.file("c.json", {"steps": [self.gated("c1")]}))
        pid = json.loads(r.stdout)["id"]
        r = self.cli("pipeline", "cancel", str(pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(": cancelled", r.stdout)

    def test_errors(self):
        for args in (["pipeline"], ["pipeline", "bogus"], ["pipeline", "show"], ["pipeline", "show", "x"],
                     ["pipeline", "retry", "1"], ["pipeline", "retry", "1", "a b"], ["pipeline", "run"],
                     ["pipeline", "run", "a.json", "b.json"], ["pipeline", "run", "a.json", "--nope"],
                     ["pipeline", "ls", "extra"]):
            r = self.cli(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        r = self.cli("pipeline", "run", self.file("cycle.json", {"steps": [dict(self.gated("x"), needs=["y"]),
                                                                        dict(self.gated("y"), needs=["x"])]}))
        self.assertEqual(r.returncode, 1)
        self.assertIn("steps form a cycle: x needs y needs x", r.stderr)
        r = self.cli("pipeline", "run", os.path.join(self.dir, "missing.json"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read", r.stderr)
        r = self.cli("pipeline", "run", "-", stdin="{not json")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not JSON (line 1", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
