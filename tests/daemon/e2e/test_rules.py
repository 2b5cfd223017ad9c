#!/usr/bin/python3
"""Reactive rules against the real galvanid (docs/api.md, "Rules").

- a rule pauses a job exactly when its metric crosses the threshold, not
  again while it stays above (a person resumes it), and again only after it
  dropped and crossed again; every firing is an event with the values that
  made it true;
- "for 4s" holds: the firing comes at least 4 s after the crossing, and a
  blip below the threshold restarts the hold;
- a metric never reported is unknown: a rule on it never fires, not even
  under "not";
- notify writes a log line; resume and cancel act;
- invalid rules get precise 400s (column and what was expected) and create
  nothing;
- kill -9 of galvanid: the firing and its latch survive, a condition that
  was already true does not fire again after the restart, the next crossing
  does;
- a full disk (the fault-injecting VFS): a firing is kept in memory and
  stored once the disk takes writes again, then survives kill -9 without
  firing again;
- labels: shown, validated, filtered by GET /jobs?label=K=V;
- the webhook (--webhook): a local HTTP server on 127.0.0.1 receives the
  event; an answer of 500 and a receiver that does not answer within
  --webhook-timeout are retried with backoff; a receiver that always fails
  is given up after --webhook-attempts, logged;
- examples/payments.sh under the CLI (when GALVANI_CLI is set): run with
  --label and --rule, paused on the first spike, resumed by a person while
  the score is still high, paused again only by the next spike; show, ls
  --label, rules add / list / rm / --job;
- global rules: POST / GET / DELETE /rules, matching by name glob and
  labels, applied to existing and new jobs, removed from every job when
  deleted, kept across a restart; bad rules are 400 invalid_rule.

Run with GALVANID=/path/to/galvanid (CTest sets it).
"""
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_e2e import Daemon, DaemonTest, wait_for  # noqa: E402
import storedb  # noqa: E402
from test_faults import FaultTest, stored  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin"}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
PAYMENTS = os.path.abspath(os.path.join(ROOT, "examples", "payments.sh"))
CLI = os.environ.get("GALVANI_CLI")

# Reports ::metric fraud_score whenever the file `score` changes.
SCORER = """#!/bin/sh
last=""
while :; do
  v=$(cat %(dir)s/score 2>/dev/null)
  if [ -n "$v" ] && [ "$v" != "$last" ]; then echo "::metric fraud_score $v"; last=$v; fi
  sleep 0.05
done
"""


class RulesBase(DaemonTest):
    """Helpers: a job reporting fraud_score from a file the test writes."""

    def set_score(self, value):
        tmp = os.path.join(self.dir, "score.tmp")
        with open(tmp, "w") as f:
            f.write("%s\n" % value)
        os.rename(tmp, os.path.join(self.dir, "score"))

    def scorer(self, rules, score=0.5):
        self.set_score(score)
        script = self.script("scorer.sh", SCORER % {"dir": self.dir})
        job = self.d.create(command=[script], env=ENV, rules=rules)
        self.seen(job["id"], score)
        return job

    def seen(self, job_id, score):
        """Wait until galvanid has the score (the rules saw it too: they
        run in the flush of the same report)."""
        return wait_for(lambda: (lambda j: j if j["metrics"].get("fraud_score") == score else None)(self.d.job(job_id)),
                        what="fraud_score %s" % score)

    def events(self, job_id):
        status, _, body = self.d.request("GET", "/jobs/%d/events" % job_id)
        self.assertEqual(status, 200, body)
        return body["events"]

    def post(self, path, want=200):
        status, _, body = self.d.request("POST", path)
        self.assertEqual(status, want, body)
        return body

    def cancel(self, job_id):
        self.d.request("POST", "/jobs/%d/cancel" % job_id)
        self.d.wait_status(job_id, "cancelled")



class RulesTest(RulesBase):
    def test_pause_on_crossing_once_per_transition(self):
        job = self.scorer([{"when": "metrics.fraud_score > 0.9", "then": "pause"}])
        jid = job["id"]
        self.assertEqual(job["rules"], [{"name": "rule-1", "when": "metrics.fraud_score > 0.9", "then": "pause"}])
        self.assertEqual(self.d.job(jid)["status"], "running")
        self.assertEqual(self.events(jid), [])
        self.set_score(0.9)  # not above
        self.seen(jid, 0.9)
        self.assertEqual(self.events(jid), [])
        self.set_score(0.95)
        self.d.wait_status(jid, "paused")
        ev = self.events(jid)
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual((ev[0]["rule"], ev[0]["then"], ev[0]["outcome"]), ("rule-1", "pause", "paused"))
        self.assertEqual(ev[0]["values"], {"metrics.fraud_score": 0.95})
        self.assertEqual(ev[0]["when"], "metrics.fraud_score > 0.9")
        self.assertRegex(ev[0]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # A person looks and resumes while the score is still high: the rule
        # does not pause it again, not even when the score moves up.
        self.post("/jobs/%d/resume" % jid)
        self.set_score(0.97)
        self.seen(jid, 0.97)
        self.assertEqual(self.d.job(jid)["status"], "running")
        self.assertEqual(len(self.events(jid)), 1)
        # It drops, then spikes again: the second firing.
        self.set_score(0.3)
        self.seen(jid, 0.3)
        self.set_score(0.99)
        self.d.wait_status(jid, "paused")
        ev = self.events(jid)
        self.assertEqual(len(ev), 2, ev)
        self.assertEqual(ev[1]["values"], {"metrics.fraud_score": 0.99})
        self.assertGreater(ev[1]["id"], ev[0]["id"])
        self.cancel(jid)

    def test_hold_for_2s(self):
        job = self.scorer([{"name": "sustained", "when": "metrics.fraud_score > 0.9 for 4s", "then": "pause"}])
        jid = job["id"]
        # A blip above: seen, then gone (the hold restarts from zero).
        self.set_score(0.95)
        self.seen(jid, 0.95)
        self.set_score(0.2)
        self.seen(jid, 0.2)
        self.set_score(0.96)
        self.seen(jid, 0.96)
        crossed = self.points(jid)[-1][0]  # ms: when galvanid recorded 0.96
        self.d.wait_status(jid, "paused")
        ev = self.events(jid)
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["rule"], "sustained")
        self.assertEqual(ev[0]["values"], {"metrics.fraud_score": 0.96})
        import datetime
        at = datetime.datetime.strptime(ev[0]["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() * 1000
        # Held for 4 s from the last crossing (a little slack for the
        # whole-millisecond rounding of both times).  4 s, not 2: the blip
        # above must end before the hold does even on a stalled machine.
        self.assertGreaterEqual(at, crossed + 4000 - 5, (at, crossed))
        self.cancel(jid)

    def points(self, jid):
        status, _, body = self.d.request("GET", "/jobs/%d/metrics?name=fraud_score" % jid)
        self.assertEqual(status, 200, body)
        return body["metrics"]["fraud_score"]

    def test_unknown_metric_never_fires(self):
        job = self.scorer([
            {"name": "never", "when": "metrics.never_reported > 0.5", "then": "pause"},
            {"name": "negated", "when": "not (metrics.never_reported < 0.5)", "then": "cancel"},
            {"name": "zero", "when": "metrics.never_reported == 0", "then": "cancel"},
            {"name": "sync", "when": "metrics.fraud_score > 0.9", "then": "notify"},
        ])
        jid = job["id"]
        self.set_score(0.95)
        wait_for(lambda: self.events(jid), what="the notify event")
        ev = self.events(jid)
        self.assertEqual([(e["rule"], e["outcome"]) for e in ev], [("sync", "logged")])
        self.assertEqual(self.d.job(jid)["status"], "running")
        wait_for(lambda: "rule.notify" in self.d.log(), what="the notify log line")
        line = [l for l in self.d.log().splitlines() if "rule.notify" in l][0]
        self.assertIn("job=%d" % jid, line)
        self.assertIn("rule=sync", line)
        self.cancel(jid)

    def test_cancel_and_resume_actions_and_fields(self):
        job = self.scorer([
            {"when": "status == \"paused\" and metrics.fraud_score <= 0.5", "then": "resume"},
            {"when": "metrics.fraud_score >= 0.99 and attempts == 1", "then": "cancel"},
        ])
        jid = job["id"]
        self.post("/jobs/%d/pause" % jid)
        # Paused with a low score: the resume rule fires at once.
        self.d.wait_status(jid, "running")
        wait_for(lambda: self.events(jid), what="the resume event")
        self.assertEqual(self.events(jid)[0]["outcome"], "resumed")
        self.assertEqual(self.events(jid)[0]["values"], {"status": "paused", "metrics.fraud_score": 0.5})
        self.set_score(0.995)
        self.d.wait_status(jid, "cancelled")
        ev = self.events(jid)
        self.assertEqual([e["outcome"] for e in ev], ["resumed", "cancelled"])

    def test_invalid_rules_get_precise_400s(self):
        def refused(rules, words, column=None):
            status, _, body = self.d.request("POST", "/jobs", {"command": ["true"], "rules": rules})
            self.assertEqual(status, 400, body)
            err = body["error"]
            self.assertEqual(err["code"], "invalid_spec")
            self.assertIn(words, err["message"])
            if column is not None:
                self.assertEqual(err["column"], column, err)
                self.assertEqual(err["field"], "rules[%d].when" % (len(rules) - 1))
        refused({"when": "true"}, "must be an array")
        refused(["x"], "rule 1 must be an object")
        refused([{"when": "true"}], "needs \"then\"")
        refused([{"then": "pause"}], "needs \"when\"")
        refused([{"when": "true", "then": "explode"}], "needs \"then\": \"pause\"")
        refused([{"when": "true", "then": "pause", "if": 1}], "unknown field \"if\"")
        refused([{"when": "true", "then": "pause", "name": "a b"}], "\"name\" must be")
        refused([{"when": "true", "then": "pause", "name": "a"}, {"when": "true", "then": "pause", "name": "a"}],
                "same \"name\"")
        refused([{"when": "metrics.x >", "then": "pause"}], "column 12: expected a value", 12)
        refused([{"when": "progress > \"high\"", "then": "pause"}], "compares a number with a string", 10)
        refused([{"when": "progres > 1", "then": "pause"}], "unknown field 'progres'", 1)
        refused([{"when": "true", "then": "pause"}, {"when": "metrics.x > 1 for 3x", "then": "pause"}],
                "rule 2 \"when\", column 20: expected a unit of time", 20)
        refused([{"when": "(progress > 1", "then": "pause"}], "expected ')'", 14)
        refused([{"when": "true", "then": "pause"}] * 33, "at most 32")
        # Nothing was created.
        status, _, body = self.d.request("GET", "/jobs")
        self.assertEqual(status, 200)
        self.assertEqual(body["total"], 0, body)

    def test_survives_kill9(self):
        job = self.scorer([{"when": "metrics.fraud_score > 0.9", "then": "pause"}])
        jid = job["id"]
        self.set_score(0.95)
        self.d.wait_status(jid, "paused")
        self.assertEqual(len(self.events(jid)), 1)
        # The firing is committed before the event shows (one transaction
        # with its latch); the pause was written with the metric's value.
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        self.d.pump.join(5)
        self.d.proc.stderr.close()
        self.d = Daemon(self.dir)
        j = self.d.wait_status(jid, "paused")
        self.assertEqual(j["metrics"]["fraud_score"], 0.95)
        ev = self.events(jid)
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["values"], {"metrics.fraud_score": 0.95})
        # Resumed while still above: no second firing, before or after a
        # new report above the threshold.
        self.post("/jobs/%d/resume" % jid)
        self.set_score(0.96)
        self.seen(jid, 0.96)
        self.assertEqual(self.d.job(jid)["status"], "running")
        self.assertEqual(len(self.events(jid)), 1)
        self.set_score(0.1)
        self.seen(jid, 0.1)
        self.set_score(0.98)
        self.d.wait_status(jid, "paused")
        self.assertEqual(len(self.events(jid)), 2)
        self.cancel(jid)


class GlobalRulesTest(RulesBase):
    def rule(self, body, want=201):
        status, headers, answer = self.d.request("POST", "/rules", body)
        self.assertEqual(status, want, answer)
        if want == 201:
            self.assertEqual(headers.get("location"), "/rules/%d" % answer["id"])
        return answer

    def test_labels(self):
        a = self.d.create(command=["sleep", "3600"], env=ENV, labels={"team": "payments", "env": "prod"})
        b = self.d.create(command=["sleep", "3600"], env=ENV, labels={"team": "search"})
        c = self.d.create(command=["sleep", "3600"], env=ENV)
        self.assertEqual(a["labels"], {"team": "payments", "env": "prod"})
        self.assertNotIn("labels", c)
        def ids(query):
            status, _, body = self.d.request("GET", "/jobs?" + query)
            self.assertEqual(status, 200, body)
            return [j["id"] for j in body["jobs"]]
        self.assertEqual(ids("label=team=payments"), [a["id"]])
        self.assertEqual(ids("label=team%3Dsearch"), [b["id"]])
        self.assertEqual(ids("label=team=nobody"), [])
        self.assertEqual(ids("label=env=prod&status=running,queued"), [a["id"]])
        status, _, body = self.d.request("GET", "/jobs?label=team")
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["code"], "invalid_query")
        for labels, words in (([], "must be an object"), ({"a b": "x"}, "is not a label name"),
                              ({"team": 3}, "must be a string"), ({"k%d" % i: "v" for i in range(33)}, "more than 32")):
            status, _, body = self.d.request("POST", "/jobs", {"command": ["true"], "labels": labels})
            self.assertEqual(status, 400, body)
            self.assertIn(words, body["error"]["message"])
        for j in (a, b, c):
            self.cancel(j["id"])

    def test_global_rule_applies_to_existing_and_new_jobs(self):
        self.set_score(0.5)
        script = self.script("scorer.sh", SCORER % {"dir": self.dir})
        old = self.d.create(command=[script], env=ENV, name="settle-1", labels={"team": "payments"})
        other = self.d.create(command=[script], env=ENV, name="report", labels={"team": "payments"})
        unlabeled = self.d.create(command=[script], env=ENV, name="settle-x")
        for j in (old, other, unlabeled):
            self.seen(j["id"], 0.5)
        rule = self.rule({"when": "metrics.fraud_score > 0.9", "then": "pause",
                          "match": {"name": "settle-*", "labels": {"team": "payments"}}})
        self.assertEqual(rule["name"], "global-%d" % rule["id"])
        self.assertEqual(rule["match"], {"name": "settle-*", "labels": {"team": "payments"}})
        new = self.d.create(command=[script], env=ENV, name="settle-2", labels={"team": "payments", "x": "y"})
        self.seen(new["id"], 0.5)
        status, _, listed = self.d.request("GET", "/rules")
        self.assertEqual((status, [r["id"] for r in listed["rules"]]), (200, [rule["id"]]))
        self.assertEqual(self.d.request("GET", "/rules/%d" % rule["id"])[2], rule)
        self.set_score(0.95)
        self.d.wait_status(old["id"], "paused")
        self.d.wait_status(new["id"], "paused")
        for j in (other, unlabeled):
            self.seen(j["id"], 0.95)
            self.assertEqual(self.d.job(j["id"])["status"], "running")
            self.assertEqual(self.events(j["id"]), [])
        ev = self.events(old["id"])
        self.assertEqual([(e["rule"], e["outcome"]) for e in ev], [(rule["name"], "paused")])
        # Deleted: gone from every job; their events stay.
        status, _, _ = self.d.request("DELETE", "/rules/%d" % rule["id"])
        self.assertEqual(status, 204)
        self.assertEqual(self.d.request("DELETE", "/rules/%d" % rule["id"])[0], 404)
        self.assertEqual(self.d.request("GET", "/rules")[2], {"rules": []})
        self.post("/jobs/%d/resume" % old["id"])
        self.set_score(0.1)
        self.seen(old["id"], 0.1)
        self.set_score(0.99)
        self.seen(old["id"], 0.99)
        self.assertEqual(self.d.job(old["id"])["status"], "running")
        self.assertEqual(len(self.events(old["id"])), 1)
        for j in (old, other, unlabeled, new):
            self.cancel(j["id"])

    def test_global_rules_survive_a_restart(self):
        rule = self.rule({"when": "metrics.fraud_score > 0.9", "then": "cancel"})
        self.d.stop()
        self.d = Daemon(self.dir)
        status, _, listed = self.d.request("GET", "/rules")
        self.assertEqual(listed["rules"], [rule])
        job = self.scorer([])
        self.set_score(0.95)
        self.d.wait_status(job["id"], "cancelled")
        self.assertEqual([e["rule"] for e in self.events(job["id"])], [rule["name"]])
        again = self.rule({"when": "true", "then": "notify"})
        self.assertGreater(again["id"], rule["id"])

    def test_bad_global_rules(self):
        def refused(body, words, column=None):
            status, _, answer = self.d.request("POST", "/rules", body)
            self.assertEqual(status, 400, answer)
            self.assertEqual(answer["error"]["code"], "invalid_rule" if column is not None or isinstance(body, dict)
                             else answer["error"]["code"])
            self.assertIn(words, answer["error"]["message"])
            if column is not None:
                self.assertEqual((answer["error"]["field"], answer["error"]["column"]), ("when", column))
        refused([], "must be a JSON object")
        refused({"then": "pause"}, "\"when\" is required")
        refused({"when": "true"}, "\"then\" is required")
        refused({"when": "true", "then": "pause", "match": "x"}, "\"match\" must be an object")
        refused({"when": "true", "then": "pause", "match": {"labels": {"a": 1}}}, "must be a string")
        refused({"when": "true", "then": "pause", "match": {"id": 1}}, "unknown field")
        refused({"when": "true", "then": "pause", "match": {"name": ""}}, "glob of 1 to 200")
        refused({"when": "true", "then": "pause", "extra": 1}, "unknown field \"extra\"")
        refused({"when": "metrics.x > 'a'", "then": "pause"}, "column 11: '>' compares a number with a string", 11)
        refused({"when": "metrics.x >", "then": "pause"}, "expected a value", 12)
        self.assertEqual(self.d.request("GET", "/rules")[2], {"rules": []})
        self.assertEqual(self.d.request("GET", "/rules/9")[0], 404)
        self.assertEqual(self.d.request("GET", "/rules/x")[0], 404)
        self.assertEqual(self.d.request("PUT", "/rules")[0], 405)
        self.assertEqual(self.d.request("POST", "/rules/1")[0], 405)


@unittest.skipIf(storedb.ON_POSTGRES, storedb.SQLITE_ONLY)
class RulesDiskFull(FaultTest, RulesBase):
    def test_firing_during_a_full_disk_is_stored_after(self):
        job = self.scorer([{"name": "alert", "when": "metrics.fraud_score > 0.9", "then": "notify"}])
        jid = job["id"]
        self.fault("full")
        self.set_score(0.95)
        wait_for(lambda: self.events(jid), what="the firing")
        ev = self.events(jid)
        self.assertEqual([(e["id"], e["rule"], e["outcome"]) for e in ev], [(0, "alert", "logged")], self.d.log()[-3000:])
        self.assertEqual(stored(self.db, "SELECT COUNT(*) FROM rule_events")[0][0], 0)
        self.fault("")
        self.wait_recovered()
        wait_for(lambda: stored(self.db, "SELECT COUNT(*) FROM rule_events")[0][0] == 1, what="the event stored")
        wait_for(lambda: self.events(jid)[0]["id"] > 0, what="the event's id")
        self.assertEqual(stored(self.db, "SELECT rule, latched FROM rule_latches WHERE job_id = ?", (jid,)),
                         [("alert", 1)])
        # kill -9: the event is kept and the rule, still true, does not fire again.
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        self.d.pump.join(5)
        self.d.proc.stderr.close()
        self.d = Daemon(self.dir)
        self.d.wait_status(jid, "running")
        self.set_score(0.97)
        self.seen(jid, 0.97)
        self.assertEqual([e["rule"] for e in self.events(jid)], ["alert"])
        self.d.request("POST", "/jobs/%d/cancel" % jid)
        self.d.wait_status(jid, "cancelled")


@unittest.skipUnless(CLI, "GALVANI_CLI is not set")
class PaymentsCliTest(RulesBase):
    def cli(self, *args, want=0):
        p = subprocess.run([CLI, "--server", self.d.url] + list(args), capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, want, (args, p.stdout, p.stderr))
        return p.stdout

    def test_payments_example(self):
        # 100 batches, 20 ms each: spikes at batches 30..39 and 80..84.
        jid = int(self.cli("run", "--name", "settle", "--label", "team=payments",
                           "--rule", "pause=metrics.fraud_score > 0.9", "--", PAYMENTS, "100", "20"))
        self.d.wait_status(jid, "paused")
        ev = self.events(jid)
        self.assertEqual(len(ev), 1, ev)
        self.assertGreater(ev[0]["values"]["metrics.fraud_score"], 0.9)
        out = self.cli("show", str(jid))
        self.assertIn("events       1", out)
        self.assertIn("metrics.fraud_score", out)
        self.assertIn("team", out)
        self.assertIn("settle", self.cli("ls", "--label", "team=payments"))
        self.assertEqual(self.cli("ls", "--label", "team=other").strip(), "no matching jobs")
        # A person resumes it: the rest of the first spike does not pause it
        # again; the second spike (batch 80) does.
        self.cli("resume", str(jid))
        j = self.d.wait_status(jid, "paused")
        self.assertGreaterEqual(j["current"], 80, j)
        ev = self.events(jid)
        self.assertEqual(len(ev), 2, ev)
        self.assertEqual(ev[1]["values"], {"metrics.fraud_score": 0.96})
        out = self.cli("rules", "--job", str(jid))
        self.assertIn("rule-1", out)
        self.assertIn("events       2", out)
        self.cli("resume", str(jid))
        self.d.wait_status(jid, "succeeded")
        # Global rules from the CLI.
        rid = int(self.cli("rules", "add", "--then", "notify", "--label", "team=payments", "--name-glob", "settle*",
                           "progress > 50"))
        self.assertIn("progress > 50", self.cli("rules"))
        err = subprocess.run([CLI, "--server", self.d.url, "rules", "add", "--then", "pause", "progress >"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(err.returncode, 1)
        self.assertIn("column 11", err.stderr)
        self.cli("rules", "rm", str(rid))
        self.assertEqual(self.cli("rules").strip(), "no global rules")


class Receiver(http.server.ThreadingHTTPServer):
    """The webhook's receiver: answers each POST as the script says (an
    HTTP status, or "hang": no answer until the test ends), then 200."""
    daemon_threads = True

    def __init__(self, script):
        self.script = list(script)
        self.got = []  # (path, content type, parsed body, answer)
        self.lock = threading.Lock()
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), ReceiverHandler)


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        with srv.lock:
            answer = srv.script.pop(0) if srv.script else 200
            srv.got.append((self.path, self.headers["Content-Type"], json.loads(body), answer))
        if answer == "hang":
            srv.release.wait(30)
            return
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class WebhookTest(RulesBase):
    answers = [500, "hang", 200]

    def setUp(self):
        self.receiver = Receiver(self.answers)
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        self.extra_args = ("--webhook", "http://127.0.0.1:%d/hook" % self.receiver.server_address[1],
                           "--webhook-timeout", "0.5")
        super().setUp()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.receiver.release.set()
            self.receiver.shutdown()
            self.receiver.server_close()

    def test_webhook_receives_the_event_and_is_retried(self):
        job = self.scorer([{"name": "alert", "when": "metrics.fraud_score > 0.9", "then": "notify"}])
        jid = job["id"]
        self.set_score(0.95)
        wait_for(lambda: "rule.webhook " in self.d.log(), what="the delivery")
        got = self.receiver.got
        self.assertEqual([g[3] for g in got], [500, "hang", 200])
        for path, ctype, body, _ in got:
            self.assertEqual((path, ctype), ("/hook", "application/json"))
            self.assertEqual(body, got[0][2])  # the same event each time
        body = got[0][2]
        self.assertEqual(body["event"], "rule.fired")
        self.assertEqual(body["job"]["id"], jid)
        self.assertEqual(body["job"]["status"], "running")
        self.assertEqual((body["rule"], body["then"]), ("alert", "notify"))
        self.assertEqual(body["values"], {"metrics.fraud_score": 0.95})
        log = self.d.log()
        self.assertEqual(log.count("rule.webhook_retry"), 2, log[-3000:])
        self.assertIn("answered 500", log)
        self.assertIn("timed out", log)
        self.assertRegex(log, r"rule\.webhook job=%d rule=alert status=200 attempts=3" % jid)
        ev = self.events(jid)
        self.assertEqual([e["outcome"] for e in ev], ["logged and posted to the webhook"])
        self.cancel(jid)


class WebhookGivesUpTest(WebhookTest):
    answers = [503] * 10

    def test_webhook_receives_the_event_and_is_retried(self):
        pass  # the parent's scenario; here every answer is a failure

    def test_webhook_gives_up_after_the_last_attempt(self):
        job = self.scorer([{"when": "metrics.fraud_score > 0.9", "then": "notify"}])
        self.set_score(0.95)
        wait_for(lambda: "rule.webhook_failed" in self.d.log(), what="the webhook to give up")
        self.assertEqual(len(self.receiver.got), 4)
        self.assertRegex(self.d.log(), r"rule\.webhook_failed job=%d rule=rule-1 attempts=4 error=\"answered 503\""
                         % job["id"])
        self.cancel(job["id"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
