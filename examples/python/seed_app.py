"""The post's FastAPI app on galvani: start, pause and cancel a job over
HTTP; an Effect pushes its progress to every WebSocket client.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/seed_app.py --port 8000

POST /job/start, /job/pause, /job/cancel; GET /job; WebSocket /ws.  The job
is a loop on the server's asyncio loop that advances progress by one every
`--tick` seconds while running; the only line that differs from the reaktiv
version is the import.
"""

import argparse
import asyncio
import json

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from galvani import Signal, Effect

job_status = Signal("idle")  # idle | running | paused | cancelled | done
job_progress = Signal(0)

app = FastAPI()
clients: set = set()
TICK = 0.05


def snapshot() -> dict:
    return {"status": job_status(), "progress": job_progress()}


def broadcast() -> None:
    message = json.dumps(snapshot())  # reads both signals: tracked
    for ws in list(clients):
        asyncio.ensure_future(send(ws, message))


async def send(ws: WebSocket, message: str) -> None:
    try:
        await ws.send_text(message)
    except Exception:  # noqa: BLE001 - a gone client is dropped
        clients.discard(ws)


pusher = None  # the Effect, made once the loop runs (it schedules sends)
runner = None


async def run_job() -> None:
    while job_status() in ("running", "paused"):
        await asyncio.sleep(TICK)
        if job_status() == "running":
            job_progress.update(lambda x: x + 1)
            if job_progress() >= 100:
                job_status.set("done")


@app.on_event("startup")
async def startup() -> None:
    global pusher
    pusher = Effect(broadcast)


@app.post("/job/start")
async def start() -> dict:
    global runner
    if job_status() in ("idle", "cancelled", "done"):
        job_progress.set(0)
        job_status.set("running")
        runner = asyncio.ensure_future(run_job())
    elif job_status() == "paused":
        job_status.set("running")
    return snapshot()


@app.post("/job/pause")
async def pause() -> dict:
    if job_status() == "running":
        job_status.set("paused")
    return snapshot()


@app.post("/job/cancel")
async def cancel() -> dict:
    if job_status() in ("running", "paused"):
        job_status.set("cancelled")
    return snapshot()


@app.get("/job")
async def get_job() -> dict:
    return snapshot()


@app.websocket("/ws")
async def ws_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    clients.add(ws)
    await ws.send_text(json.dumps(snapshot()))
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        clients.discard(ws)


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, help="serve on this listening socket (tests)")
    parser.add_argument("--tick", type=float, default=TICK)
    args = parser.parse_args()
    TICK = args.tick
    if args.fd is not None:
        uvicorn.run(app, fd=args.fd, log_level="warning")
    else:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
