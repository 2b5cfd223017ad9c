"""End to end: examples/python/seed_app.py in a uvicorn process on an
ephemeral port (a socket the test binds), driven by HTTP requests and a WebSocket client
(python3-websockets).  Waits are on messages, never on time."""

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys

import pytest

websockets = pytest.importorskip("websockets")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

APP = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "seed_app.py")


def post(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path)
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


@pytest.fixture
def app_port():
    # The listening socket exists before the app starts: connections wait in
    # its backlog until uvicorn serves them, so no readiness wait is needed.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, APP, "--fd", str(sock.fileno()), "--tick", "0.01"],
        env=dict(os.environ),
        pass_fds=[sock.fileno()],
    )
    sock.close()
    yield port
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.asyncio
async def test_progress_pushed_to_websocket(app_port):
    async with websockets.connect(f"ws://127.0.0.1:{app_port}/ws") as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert first == {"status": "idle", "progress": 0}
        loop = asyncio.get_running_loop()
        started = await loop.run_in_executor(None, post, app_port, "/job/start")
        assert started["status"] == "running"

        async def until(pred):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if pred(msg):
                    return msg

        await until(lambda m: m["status"] == "running" and m["progress"] >= 3)
        paused = await loop.run_in_executor(None, post, app_port, "/job/pause")
        assert paused["status"] == "paused"
        await until(lambda m: m["status"] == "paused")
        resumed = await loop.run_in_executor(None, post, app_port, "/job/start")
        assert resumed["status"] == "running"
        msg = await until(lambda m: m["progress"] > paused["progress"])
        assert msg["status"] == "running"
        cancelled = await loop.run_in_executor(None, post, app_port, "/job/cancel")
        assert cancelled["status"] == "cancelled"
        await until(lambda m: m["status"] == "cancelled")
