#!/usr/bin/python3
"""The peer: the job app of the post galvani comes from, written again from its
description (none of its code is copied), on Debian's python3-fastapi and
python3-uvicorn, so that galvanid can be measured beside it in the same run.

What the post describes, and this file does:
  - a job whose state is reactive signals (status, progress);
  - POST /start, /pause, /resume, /cancel drive it over HTTP;
  - a WebSocket on /ws pushes the job's state on every change: an Effect per
    connection reads the signals and queues {"status", "progress"} for that
    client, and the job advances 1 % every 100 ms (10 updates/s).

The post uses reaktiv for Signal/Effect.  reaktiv is not installable here
(Debian only, no PyPI), so the small stand-in below (Signal, Effect) is
written in this file: an Effect records the Signals it reads and re-runs
synchronously when one of them is set, which is what the app relies on.

Added for the benchmark (bench/run-daemon.sh):
  - every pushed state carries "t": the unix ms of the change, so that wsload
    measures change -> client latency the same way for every server;
  - GET /jobs/{id}: the job as JSON, for the HTTP comparison with wrk;
  - --jobs N (N > 1): N jobs that each change every --tick-ms forever, and
    /ws/jobs pushing {"type":"job","job":{...}} per change to every client
    (the same message galvanid's /ws/jobs sends), for the 100-job scenario.
    One Effect per job encodes the job once and queues it for every client:
    kinder to the peer than an Effect per client per job.

usage: seed_app.py --port PORT [--jobs 1] [--tick-ms 100]
"""
import argparse
import asyncio
import json
import time

import uvicorn
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import Response


# ---- the Signal/Effect stand-in for reaktiv --------------------------------------------------

_tracking = []  # the Effects currently running, innermost last


class Signal:
    def __init__(self, value):
        self._value = value
        self._effects = set()

    def __call__(self):
        if _tracking:
            self._effects.add(_tracking[-1])
            _tracking[-1]._deps.add(self)
        return self._value

    def set(self, value):
        if value == self._value:
            return
        self._value = value
        for effect in list(self._effects):
            effect._run()


class Effect:
    def __init__(self, fn):
        self._fn = fn
        self._deps = set()
        self._disposed = False
        self._run()

    def _run(self):
        if self._disposed:
            return
        # Dependencies are re-recorded on each run, as reaktiv does.
        for dep in self._deps:
            dep._effects.discard(self)
        self._deps.clear()
        _tracking.append(self)
        try:
            self._fn()
        finally:
            _tracking.pop()

    def dispose(self):
        self._disposed = True
        for dep in self._deps:
            dep._effects.discard(self)
        self._deps.clear()


# ---- the job ---------------------------------------------------------------------------------


def now_ms():
    return time.time_ns() // 1_000_000


class Job:
    def __init__(self, job_id, name):
        self.id = job_id
        self.name = name
        self.status = Signal("idle")
        self.progress = Signal(0)
        self.stamp = 0  # unix ms of the last change
        self.task = None

    def as_dict(self):
        return {"id": self.id, "name": self.name, "kind": "demo", "status": self.status(),
                "progress": self.progress(), "message": "t=%d" % self.stamp, "t": self.stamp}


async def run_job(job, tick_ms, forever):
    """Advances the job 1 % per tick; a --jobs N job wraps around forever."""
    try:
        while True:
            await asyncio.sleep(tick_ms / 1000)
            if job.status() == "paused":
                continue
            nxt = job.progress() + 1
            if nxt > 100:
                if not forever:
                    job.stamp = now_ms()
                    job.status.set("completed")
                    return
                nxt = 0
            job.stamp = now_ms()
            job.progress.set(nxt)
    except asyncio.CancelledError:
        pass


def make_app(njobs, tick_ms):
    app = FastAPI()
    jobs = {i: Job(i, "job-%d" % i) for i in range(1, njobs + 1)}
    demo = jobs[1]
    clients = set()  # /ws/jobs queues

    def start(job, forever):
        job.progress.set(0)
        job.stamp = now_ms()
        job.status.set("running")
        job.task = asyncio.get_running_loop().create_task(run_job(job, tick_ms, forever))

    if njobs > 1:
        @app.on_event("startup")
        async def start_all():
            for job in jobs.values():
                start(job, True)

                def push(job=job):
                    msg = json.dumps({"type": "job", "job": job.as_dict()})
                    for q in list(clients):
                        q.put_nowait(msg)
                # Kept alive by the list below for the app's lifetime.
                effects.append(Effect(push))

        effects = []

    @app.post("/start")
    async def post_start():
        if demo.status() in ("running", "paused"):
            raise HTTPException(409, "already running")
        start(demo, False)
        return {"status": demo.status(), "progress": demo.progress()}

    @app.post("/pause")
    async def post_pause():
        if demo.status() != "running":
            raise HTTPException(409, "not running")
        demo.stamp = now_ms()
        demo.status.set("paused")
        return {"status": demo.status(), "progress": demo.progress()}

    @app.post("/resume")
    async def post_resume():
        if demo.status() != "paused":
            raise HTTPException(409, "not paused")
        demo.stamp = now_ms()
        demo.status.set("running")
        return {"status": demo.status(), "progress": demo.progress()}

    @app.post("/cancel")
    async def post_cancel():
        if demo.status() not in ("running", "paused"):
            raise HTTPException(409, "not running")
        demo.task.cancel()
        demo.stamp = now_ms()
        demo.status.set("cancelled")
        return {"status": demo.status(), "progress": demo.progress()}

    @app.get("/jobs/{job_id}")
    async def get_job(job_id: int):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no job %d" % job_id)
        return job.as_dict()

    @app.websocket("/ws")
    async def ws_demo(ws: WebSocket):
        await ws.accept()
        q = asyncio.Queue()

        def push():
            q.put_nowait(json.dumps({"status": demo.status(), "progress": demo.progress(), "t": demo.stamp}))
        effect = Effect(push)
        try:
            while True:
                await ws.send_text(await q.get())
        except Exception:  # noqa: BLE001 -- any failed send means the client is gone
            pass
        finally:
            effect.dispose()

    @app.websocket("/ws/jobs")
    async def ws_jobs(ws: WebSocket):
        await ws.accept()
        q = asyncio.Queue()
        await ws.send_text(json.dumps({"type": "snapshot", "jobs": [j.as_dict() for j in jobs.values()]}))
        clients.add(q)
        try:
            while True:
                await ws.send_text(await q.get())
        except Exception:  # noqa: BLE001 -- any failed send means the client is gone
            pass
        finally:
            clients.discard(q)

    # A bare 200 on / so that a runner can wait for the port.
    @app.get("/healthz")
    async def healthz():
        return Response(content=b'{"status":"ok"}', media_type="application/json")

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--tick-ms", type=int, default=100)
    a = ap.parse_args()
    if not a.host.startswith("127."):
        ap.error("loopback (127.0.0.0/8) only")
    # uvloop and httptools when installed, as `uvicorn[standard]` would use.
    uvicorn.run(make_app(max(1, a.jobs), a.tick_ms), host=a.host, port=a.port, log_level="warning",
                backlog=4096)


if __name__ == "__main__":
    main()
