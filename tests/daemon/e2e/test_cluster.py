#!/usr/bin/python3
"""Several galvanid nodes on one PostgreSQL (issue 18), each a separate process of the real galvanid, on a
real PostgreSQL this test starts itself (tests/pg/pgserver.py: Debian's server, initdb in a temporary
directory, run as the postgres user when CI runs as root).

  - a job created on A (full) runs on B or C; every node lists every job with the node that runs it; pause from
    a node that does not run the job stops its process group, resume and cancel from others too, each answered
    once the owner applied it; GET /nodes on each node shows the three;
  - a WebSocket client on A follows a job on C: every change arrives, the final state too; the delay from the
    job's line to the client is measured and printed (not asserted: the machine is shared);
  - kill -9 of a node: after its lease the others mark it lost; its retryable job is run again by another node
    (attempt 2) and its at_most_once job fails ("node lost"); restarted, the node kills what its supervisors
    still ran for those jobs (fencing): neither runs twice at once, each ran as its policy says;
  - kill -9 and a restart within the lease: the node re-adopts its job (same pid, same node, attempt 1);
  - a second process under a live node's id is refused with a clear message.

Run with GALVANID=/path/to/galvanid (CTest sets it)."""
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "pg"))
from pgserver import PgServer  # noqa: E402
from test_e2e import DEADLINE, Daemon, DaemonTest, alive, end_leftover_jobs, group_stopped, wait_for  # noqa: E402

GALVANID = os.environ.get("GALVANID", "galvanid")
LEASE = "3"
PG = None


def setUpModule():
    global PG
    PG = PgServer().start()


def tearDownModule():
    if PG:
        PG.stop()


class Node(Daemon):
    """One galvanid node: its own local directory, the shared database."""

    def __init__(self, workdir, name, dsn, *args):
        self.name = name
        self.dsn = dsn
        super().__init__(workdir, *args)

    def command(self):
        base = os.path.join(self.workdir, self.name)
        return [GALVANID, "--listen", "127.0.0.1:0", "--store", self.dsn, "--node-id", self.name,
                "--lease", LEASE, "--log-dir", base + ".logs", "--run-dir", base + ".run",
                "--pid-file", base + ".pid", "--log-level", "debug"] + self.args

    @property
    def run_dir(self):
        return os.path.join(self.workdir, self.name + ".run")


class ClusterTest(unittest.TestCase):
    sizes = {"a": 1, "b": 2, "c": 2}

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="galvani-cluster-")
        self.dir = self.tmp.name
        self.dsn = PG.create_database("c_" + os.path.basename(self.dir).replace("-", "_").lower())
        self.nodes = {}
        for name, size in self.sizes.items():
            self.nodes[name] = Node(self.dir, name, self.dsn, "--max-running", str(size))

    def tearDown(self):
        for n in self.nodes.values():
            if n.proc.poll() is None:
                rc = n.stop()
                self.assertEqual(rc, 0, "node %s exited with %s:\n%s" % (n.name, rc, n.log()[-3000:]))
        for n in self.nodes.values():
            end_leftover_jobs(n.run_dir)
        self.tmp.cleanup()

    script = DaemonTest.script  # an executable file in self.dir

    def runs_script(self):
        """A job that appends its id and pid to runs.txt, then sleeps: how often each job really ran."""
        self.runs_file = os.path.join(self.dir, "runs.txt")
        return self.script("run.sh", '#!/bin/sh\necho "$GALVANI_JOB_ID $$" >> %s\nexec sleep 3600\n' % self.runs_file)

    def runs(self):
        try:
            with open(self.runs_file) as f:
                return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def on(self, node, job_id, *statuses):
        """Until `node` shows job_id in one of statuses (with its pid when running): another node's job
        appears there once its row has been read (404 until then)."""
        def ready():
            status, _, j = node.request("GET", "/jobs/%d" % job_id)
            if status == 404:
                return None
            self.assertEqual(status, 200, j)
            return j if j["status"] in statuses and (j["status"] != "running" or j["pid"]) else None
        return wait_for(ready, what="job %d to be %s on node %s" % (job_id, "/".join(statuses), node.name))


class JobsAnywhere(ClusterTest):
    def test_jobs_run_anywhere_and_are_controlled_from_anywhere(self):
        a, b, c = self.nodes["a"], self.nodes["b"], self.nodes["c"]
        script = self.runs_script()
        first = a.create(command=[script], name="first")
        self.assertEqual(self.on(a, first["id"], "running")["node"], "a")  # A's one slot
        more = [a.create(command=[script], name="more%d" % i) for i in range(2)]
        placed = [self.on(a, j["id"], "running") for j in more]
        self.assertTrue(all(j["node"] in ("b", "c") for j in placed), placed)
        # every node shows every job with the node that runs it, once the rows have reached it
        want = {j["id"]: j["node"] for j in [self.on(a, first["id"], "running")] + placed}
        for n in (a, b, c):
            wait_for(lambda: {j["id"]: j["node"] for j in n.request("GET", "/jobs")[2]["jobs"]} == want,
                     what="node %s to list every job where it runs" % n.name)

        job = placed[0]
        owner = self.nodes[job["node"]]
        others = [n for n in (a, b, c) if n is not owner]
        status, _, paused = others[0].request("POST", "/jobs/%d/pause" % job["id"])
        self.assertEqual((status, paused["status"], paused["node"]), (200, "paused", owner.name), paused)
        # stored when answered; the SIGSTOP follows the commit (as on one node)
        wait_for(lambda: group_stopped(job["pid"]), what="the owner to stop the process")
        self.assertEqual(owner.job(job["id"])["status"], "paused")
        status, _, again = others[1].request("POST", "/jobs/%d/pause" % job["id"])
        self.assertEqual((status, again["error"]["code"]), (409, "invalid_transition"), again)
        self.assertIn("cannot be paused", again["error"]["message"])
        status, _, resumed = others[1].request("POST", "/jobs/%d/resume" % job["id"])
        self.assertEqual((status, resumed["status"]), (200, "running"), resumed)
        wait_for(lambda: not group_stopped(job["pid"]), what="the process to run again")
        status, _, cancelled = others[0].request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual((status, cancelled["status"]), (200, "cancelled"), cancelled)
        wait_for(lambda: not alive(job["pid"]), what="the cancelled process to end")

        ports = {n.name: n.port for n in (a, b, c)}
        for n in (a, b, c):
            # as read at the node's last heartbeat (every lease / 3)
            nodes = wait_for(lambda: (lambda ns: ns if [(x["id"], x["address"]) for x in ns] == [
                (k, "127.0.0.1:%d" % ports[k]) for k in ("a", "b", "c")] else None)(n.request("GET", "/nodes")[2]["nodes"]),
                what="the three nodes with their addresses in GET /nodes of %s" % n.name)
            self.assertEqual([x["state"] for x in nodes], ["up"] * 3)
            self.assertEqual([x["self"] for x in nodes], [x["id"] == n.name for x in nodes])
        self.assertEqual(sorted(j for j, _ in self.runs()), sorted([first["id"]] + [j["id"] for j in more]))


class Relay(ClusterTest):
    """What only a job's node has — its log, metric series, params record and events — and a change of its
    params reach that node from any other (api/relay.c)."""
    sizes = {"a": 1, "b": 1}

    def test_log_metrics_events_and_params_of_another_nodes_job(self):
        a, b = self.nodes["a"], self.nodes["b"]
        with open(os.path.join(HERE, "..", "fixtures", "coop.sh")) as f:
            coop = self.script("coop.sh", f.read())
        talk = self.script("talk.sh", '#!/bin/sh\necho hello from $GALVANI_JOB_ID\necho "::metric loss 0.5"\n'
                                      'echo "::progress 40"\nexec sleep 3600\n')
        first = a.create(command=[talk], name="on-a")  # A's one slot
        self.assertEqual(self.on(a, first["id"], "running")["node"], "a")
        job = a.create(command=[coop], pause_mode="cooperative", name="on-b")
        self.assertEqual(self.on(a, job["id"], "running")["node"], "b")
        wait_for(lambda: a.job(job["id"])["message"] == "ready", what="the cooperative job on B to be ready")

        # a params change sent to A is applied by B, answered with the job as B has it, and reaches the process;
        # a page served by A may send it (Origin A): B does not see A's origin
        origin = {"Origin": "http://127.0.0.1:%d" % a.port}
        status, _, body = a.request("PATCH", "/jobs/%d/params" % job["id"], {"lr": 0.5}, headers=origin)
        self.assertEqual((status, body.get("params"), body.get("node")), (200, {"lr": 0.5}, "b"), body)
        wait_for(lambda: a.job(job["id"])["message"] == 'params {"lr":0.5}', what="the process to get its params")
        # the record and the events are B's, the same from A
        for path in ("/jobs/%d/params/history", "/jobs/%d/events"):
            got_a, got_b = a.request("GET", path % job["id"]), b.request("GET", path % job["id"])
            self.assertEqual((got_a[0], got_a[2]), (got_b[0], got_b[2]), path)
        history = a.request("GET", "/jobs/%d/params/history" % job["id"])[2]["history"]
        self.assertEqual([h["patch"] for h in history], [{"lr": 0.5}])
        # bad input is B's refusal, given through A
        status, _, body = a.request("PATCH", "/jobs/%d/params" % job["id"], raw=b"[1,", ctype="application/json")
        self.assertEqual(status, 400, body)
        self.assertIn("error", body)

        # the log and the metrics of A's job, read from B
        wait_for(lambda: b.job(first["id"])["progress"] == 40, what="A's job to report progress")
        status, _, text = b.request("GET", "/jobs/%d/log" % first["id"])
        self.assertEqual((status, text.splitlines()[0]), (200, "hello from %d" % first["id"]), text)
        status, _, metrics = b.request("GET", "/jobs/%d/metrics?name=loss" % first["id"])
        self.assertEqual(status, 200, metrics)
        self.assertEqual([p[1] for p in metrics["metrics"]["loss"]], [0.5])
        self.assertEqual(metrics, a.request("GET", "/jobs/%d/metrics?name=loss" % first["id"])[2])

        # a relayed request that finds the job is not (or no longer) the receiver's is not relayed again
        status, _, body = b.request("GET", "/jobs/%d/log" % first["id"], headers={"x-galvani-relayed-to": "b"})
        self.assertEqual((status, body["error"]["code"]), (409, "on_another_node"), body)

        # a queued job nobody runs (both nodes full): a params change makes it the receiver's, then applies it
        queued = a.create(command=[talk], name="queued")
        wait_for(lambda: b.request("GET", "/jobs/%d" % queued["id"])[0] == 200, what="B to see the queued job")
        self.assertEqual(b.job(queued["id"])["node"], None)
        status, _, body = b.request("PATCH", "/jobs/%d/params" % queued["id"], {"batch": 64})
        self.assertEqual((status, body.get("node"), body.get("params"), body.get("status")),
                         (200, "b", {"batch": 64}, "queued"), body)
        wait_for(lambda: a.job(queued["id"])["node"] == "b", what="A to see B's claim")
        status, _, body = a.request("PATCH", "/jobs/%d/params" % queued["id"], {"batch": 32})
        self.assertEqual((status, body.get("params")), (200, {"batch": 32}), body)

        # a job that ended on B keeps its log there
        status, _, body = a.request("POST", "/jobs/%d/cancel" % job["id"])
        self.assertEqual((status, body["status"], body["node"]), (200, "cancelled", "b"), body)
        wait_for(lambda: a.job(job["id"])["message"] == "cleaned up", what="the cooperative job's cleanup")
        log_b = b.request("GET", "/jobs/%d/log" % job["id"])
        self.assertEqual(log_b[0], 200)
        self.assertEqual(a.request("GET", "/jobs/%d/log" % job["id"])[2], log_b[2])

        # B killed: until its lease runs out it is "up" but does not answer — 502 with JSON, naming it
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(10)
        b.pump.join(DEADLINE)
        b.proc.stderr.close()
        status, _, body = a.request("GET", "/jobs/%d/log" % job["id"])
        self.assertEqual((status, body["error"]["code"]), (502, "node_unreachable"), body)
        self.assertIn("node b (127.0.0.1:%d)" % b.port, body["error"]["message"])
        # once lost, it is said so
        wait_for(lambda: [n["state"] for n in a.request("GET", "/nodes")[2]["nodes"] if n["id"] == "b"] == ["lost"],
                 what="B to be lost")
        status, _, body = a.request("GET", "/jobs/%d/log" % job["id"])
        self.assertEqual((status, body["error"]["code"]), (503, "node_unavailable"), body)
        self.assertIn("node b, which is lost", body["error"]["message"])
        # back: its log is served again, through A
        b.start()
        wait_for(lambda: a.request("GET", "/jobs/%d/log" % job["id"])[0] == 200, what="B's log through A again")
        self.assertEqual(a.request("GET", "/jobs/%d/log" % job["id"])[2], log_b[2])
        # deleted through A: B deletes it, with its log file on B's disk; every node forgets it
        logs_b = os.path.join(self.dir, "b.logs")
        before = os.listdir(logs_b)
        status, _, body = a.request("DELETE", "/jobs/%d" % job["id"])
        self.assertEqual(status, 204, body)
        for n in (a, b):
            wait_for(lambda: n.request("GET", "/jobs/%d" % job["id"])[0] == 404, what="the job to go on " + n.name)
        self.assertEqual(len(os.listdir(logs_b)), len(before) - 1, (before, os.listdir(logs_b)))


class Streams(ClusterTest):
    def test_a_client_on_a_sees_progress_of_a_job_on_c(self):
        a, b, c = self.nodes["a"], self.nodes["b"], self.nodes["c"]
        ticks = 200
        script = self.script("tick.sh", """#!/usr/bin/python3
import sys, time
for i in range(1, %d + 1):
    print("::status %%.6f" %% time.time(), flush=True)
    print("::progress %%d/%d" %% i, flush=True)
    time.sleep(0.02)
""" % (ticks, ticks))

        async def run():
            async with websockets.connect("ws://127.0.0.1:%d/ws/jobs" % a.port, max_size=None) as ws:
                snap = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                self.assertEqual(snap["type"], "snapshot")
                job = c.create(command=[script], name="ticks")  # C has a free slot: C's
                self.assertEqual(job["node"], "c")
                delays, seen = [], set()
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if msg.get("type") != "job" or msg["job"]["id"] != job["id"]:
                        continue
                    j = msg["job"]
                    try:
                        sent = float(j["message"])
                    except (TypeError, ValueError):
                        sent = None
                    if sent and sent not in seen:
                        seen.add(sent)
                        delays.append(time.time() - sent)
                    if j["status"] == "succeeded":
                        return j, delays
        final, delays = asyncio.run(run())
        self.assertEqual((final["status"], final["current"], final["node"]), ("succeeded", ticks, "c"))
        self.assertGreater(len(delays), ticks // 10, "progress reached A while the job ran")
        delays.sort()
        p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000  # noqa: E731
        print("\n[cluster] job on C -> WebSocket client on A: %d of %d changes seen (latest state wins), "
              "delay p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (len(delays), ticks, p(0.5), p(0.99), delays[-1] * 1000))


class LostNode(ClusterTest):
    sizes = {"a": 2, "b": 2, "c": 2}

    def test_kill9_hands_jobs_back_per_policy_and_fences_the_restart(self):
        a, b, c = self.nodes["a"], self.nodes["b"], self.nodes["c"]
        script = self.runs_script()
        retry = b.create(command=[script], name="retry", max_retries=1)
        once = b.create(command=[script], name="once", at_most_once=True, max_retries=3)
        retry = self.on(b, retry["id"], "running")
        once = self.on(b, once["id"], "running")
        self.assertEqual((retry["node"], once["node"]), ("b", "b"))
        b.stop(signal.SIGKILL)
        # the supervisors outlive their node
        self.assertTrue(alive(retry["pid"]) and alive(once["pid"]))
        lost = wait_for(lambda: (lambda ns: ns if ns.get("b") == "lost" else None)(
            {x["id"]: x["state"] for x in a.request("GET", "/nodes")[2]["nodes"]}), timeout=DEADLINE,
            what="node b to be marked lost")
        self.assertEqual(lost, {"a": "up", "b": "lost", "c": "up"})
        again = wait_for(lambda: (lambda j: j if j["status"] == "running" and j["attempts"] == 2 and j["pid"]
                                  else None)(a.job(retry["id"])), what="the retryable job to run again")
        self.assertIn(again["node"], ("a", "c"))
        failed = self.on(c, once["id"], "failed")
        self.assertIn("node lost: b", failed["error"])
        self.assertIsNone(failed["node"])
        # B comes back: what its supervisors still ran for jobs given away is killed
        b.start()
        wait_for(lambda: not alive(retry["pid"]) and not alive(once["pid"]), what="b's leftovers to be killed")
        b.wait_log("job.fenced")
        self.assertEqual(b.job(retry["id"])["node"], again["node"])
        self.assertEqual(b.job(once["id"])["status"], "failed")
        ran = self.runs()
        self.assertEqual(sorted(j for j, _ in ran), sorted([retry["id"], retry["id"], once["id"]]))
        self.assertTrue(alive(again["pid"]))
        wait_for(lambda: [x["state"] for x in b.request("GET", "/nodes")[2]["nodes"]] == ["up"] * 3,
                 what="b to be up again in its own GET /nodes")


class Pipelines(ClusterTest):
    sizes = {"a": 1, "b": 2}

    def test_a_pipeline_is_driven_by_its_node_only(self):
        """A pipeline is driven by the node that created it: its steps (here one after the other, each
        finding that node's slot free) run there, every node shows them, and another node's restart — which
        loads every pipeline row — does not drive it a second time (no step is created twice)."""
        a, b = self.nodes["a"], self.nodes["b"]
        gate = os.path.join(self.dir, "gate")
        wait = self.script("wait.sh", '#!/bin/sh\nwhile [ ! -e %s ]; do sleep 0.05; done\n' % gate)
        spec = {"name": "p", "steps": [{"name": "one", "command": [wait]},
                                       {"name": "two", "needs": ["one"], "command": [wait]}]}
        status, _, pl = a.request("POST", "/pipelines", spec)
        self.assertEqual(status, 201, pl)
        one = wait_for(lambda: (lambda js: js if js else None)(
            [j for j in a.request("GET", "/jobs")[2]["jobs"] if j["name"] and j["status"] == "running"]),
            what="the first step to run")[0]
        self.assertEqual(one["node"], "a")
        self.assertEqual(self.on(b, one["id"], "running")["node"], "a")
        b.stop()
        b.start()  # b loads the pipeline row: it must not create steps of its own
        open(gate, "w").close()
        wait_for(lambda: a.request("GET", "/pipelines/%d" % pl["id"])[2]["status"] == "succeeded",
                 what="the pipeline to succeed")
        for n in (a, b):
            jobs = wait_for(lambda: (lambda js: js if len(js) == 2 and all(j["status"] == "succeeded" for j in js)
                                     else None)(n.request("GET", "/jobs")[2]["jobs"]),
                            what="node %s to show the two step jobs, succeeded" % n.name)
            self.assertEqual(sorted(j["node"] for j in jobs), ["a", "a"])


    def test_steps_run_on_other_nodes_and_follow_the_pipeline(self):
        """A step that finds the pipeline's node full is claimed by another node; pausing, resuming and
        cancelling the pipeline on its node reaches that step there."""
        a, b = self.nodes["a"], self.nodes["b"]
        script = self.runs_script()
        spec = {"name": "wide", "steps": [{"name": "left", "command": [script]},
                                          {"name": "right", "command": [script]}]}
        status, _, pl = a.request("POST", "/pipelines", spec)
        self.assertEqual(status, 201, pl)

        def steps_running():
            jobs = [j for j in a.request("GET", "/jobs")[2]["jobs"] if j["status"] == "running" and j["pid"]]
            return jobs if len(jobs) == 2 else None
        jobs = wait_for(steps_running, what="both steps to run")
        self.assertEqual(sorted(j["node"] for j in jobs), ["a", "b"])
        far = [j for j in jobs if j["node"] == "b"][0]
        near = [j for j in jobs if j["node"] == "a"][0]
        self.assertEqual(a.request("POST", "/pipelines/%d/pause" % pl["id"])[0], 200)
        self.assertEqual(self.on(b, far["id"], "paused")["node"], "b")
        wait_for(lambda: group_stopped(far["pid"]), what="b to stop the far step's process")
        # B holds a mirror of A's pipeline (pipeline/mirror.c): its reads answer what A has, once A's row
        # reached B; its changes are relayed to A (api/relay.c)
        path = "/pipelines/%d" % pl["id"]
        seen = wait_for(lambda: (lambda x, y: x if x == y else None)(b.request("GET", path)[2],
                                                                     a.request("GET", path)[2]),
                        what="B's mirror to show the pipeline as A has it")
        self.assertEqual((seen["status"], seen["node"]), ("paused", "a"), seen)
        self.assertEqual([p["id"] for p in b.request("GET", "/pipelines")[2]["pipelines"]], [pl["id"]])
        self.assertEqual(b.request("GET", path + "/events")[:3:2], a.request("GET", path + "/events")[:3:2])
        status, _, body = b.request("GET", "/pipelines/%d" % (pl["id"] + 100))
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"), body)

        async def resume_from_b_seen_on_b():
            # a client of B's stream sees the pipeline's change made through B (driven by A)
            async with websockets.connect("ws://127.0.0.1:%d/ws/jobs" % b.port) as ws:
                snap = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                self.assertEqual([p["id"] for p in snap.get("pipelines", [])], [pl["id"]], snap)
                status, _, body = await asyncio.to_thread(b.request, "POST", path + "/resume")
                self.assertEqual((status, body["status"], body["node"]), (200, "running", "a"), body)
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if msg.get("type") == "pipeline" and not msg["pipeline"]["paused"]:
                        return msg["pipeline"]
        self.assertEqual(asyncio.run(resume_from_b_seen_on_b())["id"], pl["id"])
        self.on(b, far["id"], "running")
        wait_for(lambda: not group_stopped(far["pid"]) and not group_stopped(near["pid"]),
                 what="both steps to run again")
        status, _, body = b.request("DELETE", path)
        self.assertEqual((status, body["error"]["code"]), (409, "invalid_transition"), body)
        # a restarted B loads A's pipeline as a mirror again
        b.stop()
        b.start()
        self.assertEqual(b.request("GET", path)[2]["status"], "running")
        self.assertEqual(a.request("POST", path + "/cancel")[0], 200)
        self.on(b, far["id"], "cancelled")
        wait_for(lambda: not alive(far["pid"]), what="the far step's process to end")
        self.assertEqual(sorted(j for j, _ in self.runs()), sorted(j["id"] for j in jobs))
        wait_for(lambda: b.request("GET", path)[2]["status"] == "cancelled", what="B's mirror to be cancelled")
        # relayed to A, which deletes it once it has seen B's step end too (409 "still stopping" until then)
        wait_for(lambda: b.request("DELETE", path)[0] == 204, what="B to delete A's pipeline (through A)")
        self.assertEqual(a.request("GET", path)[0], 404)
        wait_for(lambda: b.request("GET", path)[0] == 404, what="B's mirror to go")
        self.assertEqual(b.request("GET", "/pipelines")[2]["pipelines"], [])


class GlobalRules(ClusterTest):
    sizes = {"a": 1, "b": 1}

    def test_a_global_rule_made_on_one_node_acts_on_another(self):
        """POST /rules on A reaches B at once (NOTIFY galvani_rules): B fires it on its own job, and a delete on
        B is seen by A."""
        a, b = self.nodes["a"], self.nodes["b"]
        level = os.path.join(self.dir, "level")
        with open(level, "w") as f:
            f.write("1")
        script = self.script("level.sh", '#!/bin/sh\nwhile :; do echo "::metric level $(cat %s)"; sleep 0.05; done\n'
                             % level)
        status, _, rule = a.request("POST", "/rules", {"when": "metrics.level > 5", "then": "pause"})
        self.assertEqual(status, 201, rule)
        wait_for(lambda: [r["id"] for r in b.request("GET", "/rules")[2]["rules"]] == [rule["id"]],
                 what="the rule to reach b")
        job = self.on(b, b.create(command=[script], name="levels")["id"], "running")
        self.assertEqual(job["node"], "b")
        with open(level, "w") as f:
            f.write("9")
        paused = self.on(a, job["id"], "paused")
        self.assertEqual(paused["node"], "b")
        events = b.request("GET", "/jobs/%d/events" % job["id"])[2]["events"]
        self.assertEqual([e["rule"] for e in events], [rule["name"]])
        self.assertEqual(b.request("DELETE", "/rules/%d" % rule["id"])[0], 204)
        wait_for(lambda: a.request("GET", "/rules")[2]["rules"] == [], what="the delete to reach a")


class QuickRestart(ClusterTest):
    sizes = {"a": 1, "b": 1}

    def test_restart_within_the_lease_readopts(self):
        a, b = self.nodes["a"], self.nodes["b"]
        script = self.runs_script()
        job = self.on(b, b.create(command=[script], name="kept")["id"], "running")
        b.stop(signal.SIGKILL)
        b.start()
        back = self.on(b, job["id"], "running")
        self.assertEqual((back["pid"], back["node"], back["attempts"]), (job["pid"], "b", 1))
        self.assertEqual(self.on(a, job["id"], "running")["node"], "b")
        self.assertEqual(len(self.runs()), 1)
        b.wait_log("job.adopted")

    def test_a_live_node_id_is_refused(self):
        base = os.path.join(self.dir, "dup")
        p = subprocess.run([GALVANID, "--listen", "127.0.0.1:0", "--store", self.dsn, "--node-id", "b",
                            "--log-dir", base + ".logs", "--run-dir", base + ".run", "--pid-file", base + ".pid"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("node id 'b' is in use by a live node", p.stderr)
        self.assertIn("--node-id", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
