"""galvani.client against the real galvanid (GALVANID, set by CTest), started
on an ephemeral port by tests/daemon/e2e/test_e2e.py's Daemon fixture.

Jobs here advance only when the test opens their gates (files the job's
script waits for), so every progress value is held until the test has seen
it; waits are on conditions (a message, an effect's run, the job's state),
never on time: DEADLINE only bounds a wait that would otherwise hang."""

import asyncio
import contextlib
import gc
import http.server
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import pytest

pytest.importorskip("websockets")
if not os.environ.get("GALVANID"):
    pytest.skip("GALVANID is not set (CTest sets it to the galvanid of the tree)", allow_module_level=True)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon", "e2e"))
from test_e2e import DEADLINE, Daemon, end_leftover_jobs, wait_for  # noqa: E402

import galvani  # noqa: E402
from galvani import Effect, to_async_iter  # noqa: E402
from galvani.client import (  # noqa: E402
    Client,
    ClientError,
    Conflict,
    ConnectionFailed,
    Error,
    Job,
    JobSignal,
    NotFound,
    ServerError,
)

ENV = {"PATH": "/usr/bin:/bin"}
TOKEN = "s3cret+token/with=padding"  # '+', '/', '=': the WebSocket's ?token= must percent-encode it

GATED = """#!/bin/sh
# $1: the directory of this job's gates; $2: the exit status.
gate() { while [ ! -e "$1/gate-$2" ]; do sleep 0.02; done; }
echo "::progress 10"
gate "$1" 1
echo "::metric loss 0.5"
echo "::progress 50"
gate "$1" 2
echo "finished"
touch "$1/finished"
exit "${2:-0}"
"""


@contextlib.contextmanager
def running_daemon(*args):
    workdir = tempfile.mkdtemp(prefix="galvani-py-")
    d = Daemon(workdir, "--max-running", "8", *args)
    try:
        yield d
        if d.proc.poll() is None:
            rc = d.stop()
            assert rc == 0, "galvanid exited with %s:\n%s" % (rc, d.log()[-4000:])
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        end_leftover_jobs(os.path.join(workdir, "galvani.db.run"))
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def daemon():
    with running_daemon() as d:
        yield d


@pytest.fixture
def client(daemon):
    return Client(daemon.url)


class Gated:
    """A job created from GATED: create(client) starts it, open(n) lets it past gate n."""

    def __init__(self, workdir, name):
        self.dir = os.path.join(workdir, "gates-" + name)
        os.makedirs(self.dir)
        self.script = os.path.join(workdir, "gated.sh")
        with open(self.script, "w") as f:
            f.write(GATED)
        self.name = name

    def spec(self, exit_code=0, **extra):
        return dict(command=["/bin/sh", self.script, self.dir, str(exit_code)], env=ENV, **extra)

    def finished(self):
        return os.path.exists(os.path.join(self.dir, "finished"))

    def open(self, n):
        with open(os.path.join(self.dir, "gate-%d" % n), "w"):
            pass


def recorder():
    """An effect's log and a wait on it: the effect runs on the follower's
    thread, the test waits on the condition."""
    seen, cond = [], threading.Condition()

    def record(value):
        with cond:
            seen.append(value)
            cond.notify_all()

    def until(pred, what):
        with cond:
            assert cond.wait_for(lambda: pred(seen), DEADLINE), "timed out waiting for %s: %r" % (what, seen)

    return seen, record, until


def job_status(client, job_id, *statuses):
    return wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(client.job(job_id)),
                    what="job %d to be %s" % (job_id, "/".join(statuses)))


def restart(d, port):
    """SIGTERM, then galvanid again on the same database, listening on
    `port` (0: an ephemeral one; the last --listen wins)."""
    assert d.stop() == 0, d.log()[-4000:]
    d.args += ["--listen", "127.0.0.1:%d" % port]
    d.start()


# ---- values and errors without a daemon --------------------------------------------


def test_job_is_a_read_only_mapping_with_attributes():
    job = Job({"id": 3, "status": "running", "progress": 40, "metrics": {"loss": 0.5}})
    assert (job.id, job.progress, job["status"], job.metrics["loss"]) == (3, 40, "running", 0.5)
    assert dict(job) == {"id": 3, "status": "running", "progress": 40, "metrics": {"loss": 0.5}}
    assert job == Job(dict(job)) and job != Job(dict(job, progress=41))
    assert not job.finished and Job({"status": "cancelled"}).finished
    with pytest.raises(AttributeError, match="read-only"):
        job.progress = 50
    with pytest.raises(AttributeError, match="no field 'nope'"):
        job.nope


def test_unreachable_daemon_is_a_connection_failure():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    c = Client("http://127.0.0.1:%d" % port, timeout=5)
    with pytest.raises(ConnectionFailed) as err:
        c.health()
    assert err.value.status is None and err.value.code == "connection_failed"
    with pytest.raises(ConnectionFailed), c.watch(reconnect=False) as w:
        next(w)


def test_5xx_and_foreign_errors():
    """galvanid's 503s (a full disk, shutting down) need a broken store to
    provoke; a stand-in server answers them, and a proxy's non-JSON page."""
    answers = {"/jobs/1": (503, b'{"error":{"code":"store_unavailable","message":"disk full; retry later"}}'),
               "/jobs/2": (502, b"<html>Bad Gateway</html>")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers[self.path]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        c = Client("http://127.0.0.1:%d" % server.server_port)
        with pytest.raises(ServerError) as err:
            c.job(1)
        assert (err.value.status, err.value.code, err.value.message) == (503, "store_unavailable", "disk full; retry later")
        with pytest.raises(ServerError) as err:
            c.job(2)
        assert (err.value.status, err.value.code, err.value.message) == (502, "http_502", "<html>Bad Gateway</html>")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ---- every call ------------------------------------------------------------------------


def test_job_calls(daemon, client):
    assert client.health()["status"] == "ok"
    rule = client.create_rule("metrics.loss > 0.4", "notify", match={"name": "gated-*"})
    g = Gated(daemon.workdir, "a")
    job = client.create(g.spec(params={"lr": 0.1}, labels={"team": "ml"},
                               rules=[{"name": "lossy", "when": "metrics.loss > 0.4", "then": "notify"}]),
                        name="gated-a")
    jid = job["id"]
    demo = client.create({"kind": "demo", "demo_step_ms": 1}, name="quick")
    assert client.job(jid)["spec"]["command"] == g.spec()["command"]
    wait_for(lambda: client.job(jid)["progress"] == 10, what="progress 10")

    assert jid in [j["id"] for j in client.jobs(status="running")]
    assert jid in [j["id"] for j in client.jobs(status=["running", "paused"])]
    assert [j["id"] for j in client.jobs(label="team=ml")] == [jid]
    assert [j["id"] for j in client.jobs(label={"team": "ml"})] == [jid]
    assert len(client.jobs(limit=1)) == 1
    job_status(client, demo["id"], "succeeded")
    assert [j["id"] for j in client.jobs(offset=1, limit=1)] == [jid]  # newest first: demo, then a

    assert client.pause(jid)["status"] == "paused"
    assert client.resume(jid)["status"] == "running"
    assert client.set_params(jid, lr=0.05)["params"] == {"lr": 0.05}
    assert client.set_params(jid, {"lr": None, "warmup": 3})["params"] == {"warmup": 3}
    history = client.params_history(jid)
    assert history["params_revision"] == 2
    assert [h["patch"] for h in history["history"]] == [{"lr": 0.05}, {"lr": None, "warmup": 3}]

    g.open(1)
    wait_for(lambda: client.job(jid)["progress"] == 50, what="progress 50")
    series = client.metrics(jid)["loss"]
    assert [v for _, v in series] == [0.5]
    t_ms = series[0][0]
    assert client.metrics(jid, name="loss") == {"loss": series}
    assert client.metrics(jid, name="nope") == {}
    assert client.metrics(jid, since=t_ms) == {"loss": series}
    assert client.metrics(jid, since=t_ms + 1)["loss"] == []
    fired = wait_for(lambda: (lambda ev: ev if len(ev) == 2 else None)(client.events(jid)), what="two firings")
    assert sorted(e["rule"] for e in fired) == sorted(["lossy", rule["name"]])
    assert {e["outcome"] for e in fired} == {"logged"}

    g.open(2)
    done = job_status(client, jid, "succeeded")
    assert (done["progress"], done["exit_code"]) == (100, 0)
    text = client.log(jid)
    assert text.endswith("finished\n") and "::progress 50" in text
    assert client.log(jid, tail=9) == "finished\n"
    assert client.log(jid, offset=len(text.encode()) - 9) == "finished\n"

    client.delete(jid)
    with pytest.raises(NotFound):
        client.job(jid)
    assert jid not in [j["id"] for j in client.jobs()]

    other = client.create(Gated(daemon.workdir, "b").spec())
    assert client.cancel(other["id"])["status"] == "cancelled"


def test_errors_carry_the_daemons_code_and_message(daemon, client):
    with pytest.raises(NotFound) as err:
        client.job(424242)
    assert isinstance(err.value, ClientError) and isinstance(err.value, Error)
    assert (err.value.status, err.value.code, err.value.message) == (404, "not_found", "no job 424242")

    g = Gated(daemon.workdir, "e")
    job = client.create(g.spec())
    wait_for(lambda: client.job(job["id"])["progress"] == 10, what="the job to run")
    with pytest.raises(Conflict) as err:
        client.delete(job["id"])
    assert (err.value.status, err.value.code) == (409, "invalid_transition")
    client.cancel(job["id"])
    with pytest.raises(Conflict) as err:
        client.pause(job["id"])
    assert err.value.code == "invalid_transition" and "cannot be paused" in err.value.message

    with pytest.raises(ClientError) as err:
        client.create(command=["true"], timout=3)
    assert (err.value.status, err.value.code) == (400, "invalid_spec") and '"timout"' in err.value.message
    with pytest.raises(ClientError) as err:
        client.create(command=["true"], params_schema={"lr": {"type": "number", "max": 1}}, params={"lr": 5})
    assert (err.value.status, err.value.code) == (422, "invalid_params")
    assert (err.value.details["field"], err.value.details["rule"]) == ("lr", "max")
    with pytest.raises(ClientError) as err:
        client.jobs(status="bogus")
    assert err.value.code == "invalid_query" and '"bogus"' in err.value.message
    with pytest.raises(ClientError) as err:
        client.create_rule("progress >", "pause")
    assert err.value.code == "invalid_rule" and err.value.details["field"] == "when" and "column" in err.value.details
    with pytest.raises(NotFound):
        client.signal(424242)
    with pytest.raises(NotFound) as err, client.watch(424242) as w:
        next(w)
    assert err.value.message == "no job 424242"


def test_global_rule_calls(client):
    rule = client.create_rule("progress >= 50", "pause", match={"name": "x-*", "labels": {"team": "ml"}})
    assert rule["name"] == "global-%d" % rule["id"] and rule["match"]["name"] == "x-*"
    assert client.rules() == [rule]
    assert client.rule(rule["id"]) == rule
    client.delete_rule(rule["id"])
    assert client.rules() == []
    with pytest.raises(NotFound):
        client.rule(rule["id"])
    with pytest.raises(NotFound):
        client.delete_rule(rule["id"])


def test_token():
    with running_daemon("--token", TOKEN) as d:
        for c in (Client(d.url), Client(d.url, token="wrong")):
            with pytest.raises(ClientError) as err:
                c.jobs()
            assert (err.value.status, err.value.code) == (401, "unauthorized")
            with pytest.raises(ClientError) as err, c.watch() as w:
                next(w)
            assert (err.value.status, err.value.code) == (401, "unauthorized")
        c = Client(d.url, token=TOKEN)
        assert c.jobs() == []
        with c.watch() as w:
            assert next(w)["type"] == "snapshot"
        job = c.create(kind="demo", demo_step_ms=1)
        js = c.signal(job["id"])
        assert js.wait(DEADLINE).status == "succeeded"


# ---- streams -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_watch_sees_a_job_go_running_to_succeeded(daemon, client):
    g = Gated(daemon.workdir, "w")
    statuses, counts = [], []

    async def follow():
        job = None
        async with client.watch() as w:
            async for msg in w:
                if msg["type"] == "snapshot":
                    assert msg["jobs"] == []
                    job = client.create(g.spec())
                elif msg["type"] == "counts":
                    counts.append(msg["counts"])
                elif msg["type"] == "job" and msg["job"]["id"] == job["id"]:
                    j = msg["job"]
                    statuses.append(j["status"])
                    if j["status"] == "running" and j["progress"] == 10:
                        g.open(1)
                        g.open(2)
                    if j["status"] == "succeeded":
                        return j

    final = await asyncio.wait_for(follow(), DEADLINE)
    assert final["progress"] == 100
    assert "running" in statuses and statuses[-1] == "succeeded"
    assert statuses.index("running") > max((i for i, s in enumerate(statuses) if s == "queued"), default=-1)
    assert any(c["running"] == 1 for c in counts)


def test_watch_one_job_blocking_ends_with_removed(daemon, client):
    g = Gated(daemon.workdir, "r")
    job = client.create(g.spec())
    seen = []
    with client.watch(job["id"]) as w:
        for msg in w:  # ends after "removed": the ?job= stream is over
            seen.append(msg["type"])
            if msg["type"] == "snapshot":
                assert [j["id"] for j in msg["jobs"]] == [job["id"]]
            if msg["type"] in ("snapshot", "job"):
                j = msg["jobs"][0] if msg["type"] == "snapshot" else msg["job"]
                if j["progress"] == 10:
                    g.open(1)
                    g.open(2)
                if j["status"] == "succeeded":
                    client.delete(job["id"])
    assert seen[0] == "snapshot" and seen[-1] == "removed"


def test_signal_drives_an_effect_to_the_final_state(daemon, client):
    g = Gated(daemon.workdir, "s")
    job = client.create(g.spec())
    js = client.signal(job["id"])
    assert isinstance(js, galvani.ReadonlySignal) and isinstance(js(), Job) and js.following
    seen, record, until = recorder()
    threads = set()

    def show():
        threads.add(threading.current_thread().name)
        record((js().status, js().progress))

    effect = Effect(show)
    until(lambda s: ("running", 10) in s, "progress 10")
    g.open(1)
    until(lambda s: ("running", 50) in s, "progress 50")
    g.open(2)
    final = js.wait(DEADLINE)
    assert (final.status, final.progress, final.exit_code) == ("succeeded", 100, 0)
    assert seen[-1] == ("succeeded", 100) and js() == final
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert not js.following and not js.removed
    assert threads <= {"MainThread", "galvani-job-%d" % job["id"]}
    effect.dispose()


@pytest.mark.asyncio
async def test_signal_on_the_running_loop(daemon, client):
    """Inside a loop the follower is a task on it: to_async_iter (an
    asyncio.Queue fed by an effect) needs its effect on the loop's thread."""
    g = Gated(daemon.workdir, "l")
    job = client.create(g.spec())
    js = client.signal(job["id"])
    seen = []

    async def follow():
        async with contextlib.aclosing(to_async_iter(js)) as values:
            async for j in values:
                assert threading.current_thread() is threading.main_thread()
                seen.append((j.status, j.progress))
                if j.progress == 10:
                    g.open(1)
                if j.progress == 50:
                    g.open(2)
                if j.finished:
                    return j

    final = await asyncio.wait_for(follow(), DEADLINE)
    assert (final.status, final.progress) == ("succeeded", 100)
    assert ("running", 50) in seen
    assert await asyncio.wait_for(js.wait_async(), DEADLINE) is final


def test_signal_of_a_finished_job_and_stopping(daemon, client):
    demo = client.create(kind="demo", demo_step_ms=1)
    job_status(client, demo["id"], "succeeded")
    done = client.signal(demo["id"])
    assert not done.following and done.wait(0).status == "succeeded"

    g = Gated(daemon.workdir, "c")
    job = client.create(g.spec())
    with client.signal(job["id"]) as js:
        assert js.following
    assert js.wait(DEADLINE) == js() and not js.following  # close(): the last value stays

    # Dropping the last reference stops the follower (a finalizer cancels it).
    name = "galvani-job-%d" % job["id"]
    js = client.signal(job["id"])
    assert name in [t.name for t in threading.enumerate()]
    del js
    gc.collect()
    wait_for(lambda: name not in [t.name for t in threading.enumerate()], what="the follower thread to end")

    galvani.set_thread_safety(False)
    try:
        with pytest.raises(RuntimeError, match="set_thread_safety"):
            client.signal(job["id"])
    finally:
        galvani.set_thread_safety(True)


def test_signal_of_a_job_deleted_while_disconnected(daemon, client):
    """The job is cancelled and deleted by a galvanid the follower cannot
    reach (same database, another port); when galvanid is back on its port
    the job is gone: the signal keeps the last state it saw, `removed`."""
    g = Gated(daemon.workdir, "d")
    job = client.create(g.spec())
    js = client.signal(job["id"])
    seen, record, until = recorder()
    effect = Effect(lambda: record(js().progress))
    until(lambda s: 10 in s, "progress 10")
    port = daemon.port
    restart(daemon, 0)
    elsewhere = Client(daemon.url)
    elsewhere.cancel(job["id"])
    # Deletable once its process is gone (exit_code / signal filled in).
    wait_for(lambda: (lambda j: j["exit_code"] is not None or j["signal"] is not None)(elsewhere.job(job["id"])),
             what="the cancelled job's process to end")
    elsewhere.delete(job["id"])
    restart(daemon, port)
    last = js.wait(DEADLINE)
    assert js.removed and (last.status, last.progress) == ("running", 10)
    assert seen[-1] == 10
    effect.dispose()


# ---- pipelines ---------------------------------------------------------------------------


def test_pipeline_created_and_followed(daemon, client):
    g = Gated(daemon.workdir, "p")
    definition = {"name": "ci", "steps": [dict(g.spec(), name="a"),
                                          {"name": "b", "needs": ["a"], "command": ["true"], "env": ENV}],
                  "rules": [{"when": "steps.a.progress >= 10", "then": "notify"}]}

    def until(w, pred, what):
        end = time.monotonic() + DEADLINE
        for msg in w:
            if pred(msg):
                return msg
            assert time.monotonic() < end, "timed out waiting for " + what
        raise AssertionError("the stream ended before " + what)

    def pipeline_msg(pid, pred=lambda p: True):
        return lambda m: m["type"] == "pipeline" and m["pipeline"]["id"] == pid and pred(m["pipeline"])

    with client.watch() as w:
        snap = next(w)
        assert snap["type"] == "snapshot" and snap["pipelines"] == []
        pl = client.create_pipeline(definition)
        pid = pl["id"]
        until(w, pipeline_msg(pid, lambda p: p["steps"][0]["progress"] == 10), "step a at 10")
        assert [p["id"] for p in client.pipelines()] == [pid]
        assert client.pipeline(pid)["steps"][1]["status"] == "waiting"
        assert client.pause_pipeline(pid)["paused"] is True
        until(w, pipeline_msg(pid, lambda p: p["status"] == "paused"), "paused")
        with pytest.raises(Conflict):
            client.pause_pipeline(pid)
        assert client.resume_pipeline(pid)["status"] == "running"
        g.open(1)
        g.open(2)
        done = until(w, pipeline_msg(pid, lambda p: p["status"] == "succeeded"), "succeeded")
        assert [s["status"] for s in done["pipeline"]["steps"]] == ["succeeded", "succeeded"]
        events = client.pipeline_events(pid)
        assert len(events) == 1 and events[0]["then"] == "notify"

        first_b = done["pipeline"]["steps"][1]["job"]
        retried = client.retry_step(pid, "b")
        assert retried["steps"][1]["job"] != first_b
        until(w, pipeline_msg(pid, lambda p: p["status"] == "succeeded" and len(p["steps"][1]["jobs"]) == 2),
              "the retried step to succeed")
        with pytest.raises(NotFound):
            client.retry_step(pid, "no/such step")

        cancelled = client.create_pipeline(name="stop", steps=[dict(Gated(daemon.workdir, "q").spec(), name="a")])
        assert client.cancel_pipeline(cancelled["id"])["status"] == "cancelled"

        client.delete_pipeline(pid)
        until(w, lambda m: m["type"] == "pipeline_removed" and m["id"] == pid, "pipeline_removed")
        with pytest.raises(NotFound):
            client.pipeline(pid)
        with pytest.raises(NotFound):
            client.delete_pipeline(pid)


# ---- restarts ----------------------------------------------------------------------------


def test_reconnect_after_the_daemon_restarts(daemon, client):
    """SIGTERM while a job runs, the job finishes while galvanid is down, and
    galvanid comes back on the same database and port: the signal and the
    watch reconnect, and both end on the final state they missed."""
    g = Gated(daemon.workdir, "restart")
    job = client.create(g.spec())
    js = client.signal(job["id"])
    seen, record, until = recorder()
    effect = Effect(lambda: record((js().status, js().progress)))
    until(lambda s: ("running", 10) in s, "progress 10")
    with client.watch(job["id"]) as w:
        assert next(w)["type"] == "snapshot"
        daemon.stop()
        g.open(1)
        g.open(2)
        # Its supervisor (galvani-shim) outlives galvanid.
        wait_for(g.finished, what="the job to finish while galvanid is down")
        daemon.args += ["--listen", "127.0.0.1:%d" % daemon.port]
        daemon.start()
        final = js.wait(DEADLINE)
        assert (final.status, final.progress, final.exit_code) == ("succeeded", 100, 0)
        assert seen[-1] == ("succeeded", 100)
        for msg in w:  # what the old connection had, then the new snapshot
            if msg["type"] == "snapshot" and msg["jobs"][0]["status"] == "succeeded":
                break
    effect.dispose()
