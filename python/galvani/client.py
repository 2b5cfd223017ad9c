"""galvani.client: a client for galvanid, the job daemon (docs/api.md).

    from galvani import Effect
    from galvani.client import Client

    c = Client("http://127.0.0.1:8000")          # token=... when galvanid has one
    job = c.signal(c.create(command=["make"])["id"])
    watcher = Effect(lambda: print(job().status, job().progress))
    job.wait()                                    # until the job finished

The HTTP calls are synchronous and return the daemon's JSON as dicts and
lists; a refused request raises Error (or a subclass) carrying the daemon's
error code and message.  The streams (watch(), signal()) read /ws/jobs with
Debian's python3-websockets, reconnecting with backoff.  The standard library
does everything else: one short-lived http.client connection per call, so a
Client can be shared by threads.  python/README.md says how signal() runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import operator
import random
import threading
import urllib.parse
import weakref
from collections.abc import Mapping
from typing import Any, AsyncIterator, Iterator, Optional

from . import ReadonlySignal, Signal, is_thread_safety_enabled

__all__ = [
    "Client",
    "Job",
    "JobSignal",
    "Watch",
    "Error",
    "ClientError",
    "NotFound",
    "Conflict",
    "ServerError",
    "ConnectionFailed",
    "FINISHED",
]

#: The statuses a job never leaves (a failure with retries left is queued again).
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


# ---- errors ------------------------------------------------------------------


class Error(Exception):
    """A request galvanid refused (or could not be sent): ``status`` is the
    HTTP status, ``code`` the daemon's stable error code (``not_found``,
    ``invalid_transition``, ...), ``message`` its text for people, ``details``
    the whole error object (``field``, ``rule``, ``line``, ``column`` when the
    daemon gives them)."""

    def __init__(self, status: Optional[int], code: str, message: str, details: Optional[dict] = None) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {"code": code, "message": message}


class ClientError(Error):
    """A 4xx answer: the request is wrong (400, 401, 403, 413, 422, ...)."""


class NotFound(ClientError):
    """404: no such job, pipeline, rule, step or route."""


class Conflict(ClientError):
    """409: the state refuses (pausing a finished job, deleting a running one)."""


class ServerError(Error):
    """A 5xx answer: the daemon could not do it now (``store_unavailable``:
    nothing changed, retry later; ``shutting_down``; ``too_many_connections``)."""


class ConnectionFailed(Error):
    """galvanid could not be reached, or the connection broke before an answer
    (``status`` is None)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, "connection_failed", message)


def _error(status: int, payload: bytes) -> Error:
    """The exception for an error answer.  Every error galvanid produces is
    {"error": {"code", "message", ...}}; anything else (a proxy's page) keeps
    its text as the message."""
    text = payload.decode("utf-8", "replace").strip()
    details = None
    try:
        body = json.loads(text)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            details = body["error"]
    except ValueError:
        pass
    if details is None:
        details = {"code": f"http_{status}", "message": text or http.client.responses.get(status, "")}
    code, message = str(details.get("code", f"http_{status}")), str(details.get("message", ""))
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = ClientError
    return cls(status, code, message, details)


# ---- the job as a value --------------------------------------------------------


class Job(Mapping):
    """One job as galvanid last sent it, read-only: ``job.progress`` or
    ``job["progress"]`` (fields: docs/api.md, "The job object").  Two Jobs are
    equal when every field is, which is what lets a JobSignal skip the repeated
    unchanged states a stream may send."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        # Private names are never fields (and copy/pickle probe them before
        # _data exists).
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"job has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Job is read-only: change the job through the Client")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._data))

    @property
    def finished(self) -> bool:
        """The job reached a status it never leaves."""
        return self._data.get("status") in FINISHED

    def __repr__(self) -> str:
        d = self._data
        return f"Job(id={d.get('id')!r}, name={d.get('name')!r}, status={d.get('status')!r}, progress={d.get('progress')!r})"


# ---- the client ----------------------------------------------------------------


def _id(value: Any) -> int:
    """Ids go into paths: an int (bool excluded), never a string that could
    carry '/..' or a query."""
    if isinstance(value, bool):
        raise TypeError("an id is a positive integer, not a bool")
    return operator.index(value)


def _merge(base: Optional[Mapping], fields: dict) -> dict:
    body = dict(base) if base is not None else {}
    body.update(fields)
    return body


class Client:
    """galvanid's HTTP API and streams.  ``url`` is where galvanid listens
    (a path prefix is kept, for a reverse proxy); ``token`` is sent as
    ``Authorization: Bearer`` on every request and as ``?token=`` on the
    WebSocket; ``timeout`` bounds each request (seconds)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: Optional[str] = None, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"galvani.client: expected an http:// or https:// URL, not {url!r}")
        self.url = url
        self.token = token
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._netloc = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        return f"Client({self.url!r}{', token=...' if self.token else ''})"

    # -- transport --

    def _request(self, method: str, path: str, query: Optional[dict] = None, body: Any = None) -> bytes:
        target = self._prefix + path
        if query:
            # '=' and ',' stay literal: ?label=team=payments, ?status=running,paused
            q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, safe="=,")
            if q:
                target += "?" + q
        headers = {"Accept": "application/json"}
        if self.token is not None:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionFailed(f"{method} {target} on {self._netloc}: {exc!r}") from exc
        finally:
            conn.close()
        if resp.status >= 400:
            raise _error(resp.status, payload)
        return payload

    def _json(self, method: str, path: str, query: Optional[dict] = None, body: Any = None) -> Any:
        payload = self._request(method, path, query, body)
        return json.loads(payload) if payload else None

    # -- service --

    def health(self) -> dict:
        """GET /healthz: job counts, the store's state, stream clients."""
        return self._json("GET", "/healthz")

    # -- jobs --

    def jobs(self, status: Any = None, label: Any = None, limit: Optional[int] = None,
             offset: Optional[int] = None) -> list:
        """The jobs, newest first.  ``status``: one status or several
        (``"running"``, ``["running", "paused"]``); ``label``: ``"team=payments"``
        or ``{"team": "payments"}`` (one label); ``limit`` 0..1000 (default 100)."""
        if status is not None and not isinstance(status, str):
            status = ",".join(status)
        if isinstance(label, Mapping):
            if len(label) != 1:
                raise ValueError("label: the daemon filters on one label")
            ((k, v),) = label.items()
            label = f"{k}={v}"
        query = {"status": status, "label": label, "limit": limit, "offset": offset}
        return self._json("GET", "/jobs", query)["jobs"]

    def job(self, job_id: int) -> dict:
        """GET /jobs/{id}: the job, with the ``spec`` it was created from."""
        return self._json("GET", f"/jobs/{_id(job_id)}")

    def create(self, spec: Optional[Mapping] = None, /, **fields: Any) -> dict:
        """POST /jobs: ``create(command=["make"], name="build")`` or
        ``create({"command": [...]})`` (both merge, keywords win)."""
        return self._json("POST", "/jobs", body=_merge(spec, fields))

    def pause(self, job_id: int) -> dict:
        return self._json("POST", f"/jobs/{_id(job_id)}/pause")

    def resume(self, job_id: int) -> dict:
        return self._json("POST", f"/jobs/{_id(job_id)}/resume")

    def cancel(self, job_id: int) -> dict:
        return self._json("POST", f"/jobs/{_id(job_id)}/cancel")

    def delete(self, job_id: int) -> None:
        """DELETE /jobs/{id}: a finished job (Conflict otherwise)."""
        self._request("DELETE", f"/jobs/{_id(job_id)}")

    def set_params(self, job_id: int, patch: Optional[Mapping] = None, /, **fields: Any) -> dict:
        """PATCH /jobs/{id}/params, a JSON merge: ``set_params(3, lr=0.05)``;
        a None value removes the param.  Returns the job."""
        return self._json("PATCH", f"/jobs/{_id(job_id)}/params", body=_merge(patch, fields))

    def params_history(self, job_id: int) -> dict:
        """{"params_revision", "params_applied", "history": [...]}."""
        return self._json("GET", f"/jobs/{_id(job_id)}/params/history")

    def metrics(self, job_id: int, since: Optional[int] = None, name: Optional[str] = None) -> dict:
        """Each metric's series, ``{"loss": [[t_ms, value], ...]}``."""
        return self._json("GET", f"/jobs/{_id(job_id)}/metrics", {"since": since, "name": name})["metrics"]

    def events(self, job_id: int) -> list:
        """The job's rule firings, oldest first."""
        return self._json("GET", f"/jobs/{_id(job_id)}/events")["events"]

    def log(self, job_id: int, offset: Optional[int] = None, tail: Optional[int] = None) -> str:
        """The job's output.  ``offset`` and ``tail`` count bytes of the log
        file (a follower passes ``len(text.encode())`` of what it has); bytes
        that are not UTF-8 become U+FFFD."""
        payload = self._request("GET", f"/jobs/{_id(job_id)}/log", {"offset": offset, "tail": tail})
        return payload.decode("utf-8", "replace")

    # -- pipelines --

    def create_pipeline(self, definition: Optional[Mapping] = None, /, **fields: Any) -> dict:
        """POST /pipelines (``{"name", "steps": [...], "on_failure", "rules"}``)."""
        return self._json("POST", "/pipelines", body=_merge(definition, fields))

    def pipelines(self, limit: Optional[int] = None, offset: Optional[int] = None) -> list:
        return self._json("GET", "/pipelines", {"limit": limit, "offset": offset})["pipelines"]

    def pipeline(self, pipeline_id: int) -> dict:
        return self._json("GET", f"/pipelines/{_id(pipeline_id)}")

    def pause_pipeline(self, pipeline_id: int) -> dict:
        return self._json("POST", f"/pipelines/{_id(pipeline_id)}/pause")

    def resume_pipeline(self, pipeline_id: int) -> dict:
        return self._json("POST", f"/pipelines/{_id(pipeline_id)}/resume")

    def cancel_pipeline(self, pipeline_id: int) -> dict:
        return self._json("POST", f"/pipelines/{_id(pipeline_id)}/cancel")

    def retry_step(self, pipeline_id: int, step: str) -> dict:
        """Re-run a step, then the steps after it.  Returns the pipeline."""
        name = urllib.parse.quote(step, safe="")
        return self._json("POST", f"/pipelines/{_id(pipeline_id)}/steps/{name}/retry")

    def delete_pipeline(self, pipeline_id: int) -> None:
        self._request("DELETE", f"/pipelines/{_id(pipeline_id)}")

    def pipeline_events(self, pipeline_id: int) -> list:
        return self._json("GET", f"/pipelines/{_id(pipeline_id)}/events")["events"]

    # -- global rules --

    def rules(self) -> list:
        return self._json("GET", "/rules")["rules"]

    def rule(self, rule_id: int) -> dict:
        return self._json("GET", f"/rules/{_id(rule_id)}")

    def create_rule(self, when: str, then: str, match: Optional[Mapping] = None) -> dict:
        """POST /rules: ``create_rule("metrics.fraud_score > 0.9", "pause",
        match={"name": "settle-*", "labels": {"team": "payments"}})``."""
        body = {"when": when, "then": then}
        if match is not None:
            body["match"] = dict(match)
        return self._json("POST", "/rules", body=body)

    def delete_rule(self, rule_id: int) -> None:
        self._request("DELETE", f"/rules/{_id(rule_id)}")

    # -- streams --

    def _ws_url(self, job_id: Optional[int]) -> str:
        query = {}
        if job_id is not None:
            query["job"] = _id(job_id)
        if self.token is not None:
            # Percent-encoded: a '+' in a query would be a space.
            query["token"] = self.token
        q = "?" + urllib.parse.urlencode(query) if query else ""
        return f"{'wss' if self._https else 'ws'}://{self._netloc}{self._prefix}/ws/jobs{q}"

    async def _messages(self, job_id: Optional[int], reconnect: bool) -> AsyncIterator[dict]:
        """Each /ws/jobs message, parsed.  When the connection drops (the
        daemon restarts, the network breaks) and ``reconnect`` is set, connect
        again with backoff and go on from the new snapshot, which is the
        current truth: a state missed meanwhile is in it.  A handshake the
        daemon refuses (401, 404: the job is gone) raises; a ?job= stream ends
        after its job's ``removed``."""
        import websockets  # Debian's python3-websockets; only the streams need it

        backoff = _Backoff()
        while True:
            try:
                async with websockets.connect(self._ws_url(job_id), open_timeout=self.timeout,
                                              max_size=_MAX_MESSAGE) as ws:
                    async for frame in ws:
                        msg = json.loads(frame)
                        if msg.get("type") == "snapshot":
                            backoff.reset()
                        yield msg
                        if job_id is not None and msg.get("type") == "removed":
                            return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
                status = _refused_status(exc)
                if status is not None and (status < 500 or not reconnect):
                    raise await self._refusal(job_id, status, exc) from exc
                if not reconnect:
                    raise ConnectionFailed(f"/ws/jobs on {self._netloc}: {exc!r}") from exc
            else:
                # A normal close: 1001 when galvanid stops, the next one may be up soon.
                if not reconnect:
                    return
            await asyncio.sleep(backoff.next())

    async def _refusal(self, job_id: Optional[int], status: int, exc: Exception) -> Error:
        """The daemon's own error for a refused handshake.  websockets 10 keeps
        only the status; a plain GET of the same URL gets the same refusal
        (a token, an unknown job) with the daemon's code and message."""
        body = getattr(getattr(exc, "response", None), "body", None)
        if body:
            return _error(status, body)
        try:
            await asyncio.to_thread(self._request, "GET", "/ws/jobs", {"job": job_id})
        except Error as err:
            if err.status == status:
                return err
        return _error(status, f"the stream /ws/jobs was refused (HTTP {status})".encode())

    def watch(self, job_id: Optional[int] = None, *, reconnect: bool = True) -> "Watch":
        """The /ws/jobs messages (``snapshot``, ``job``, ``removed``, ``counts``,
        ``pipeline``, ``pipeline_removed``; docs/api.md), as dicts, of every job
        or of ``job_id`` only.  ``async for msg in client.watch()`` on the
        running loop, or ``for msg in client.watch()`` (a private loop, see
        Watch).  After a reconnect the stream goes on with a new snapshot."""
        return Watch(self._messages(job_id, reconnect))

    def signal(self, job_id: int) -> "JobSignal":
        """A read-only galvani signal whose value is the job (a Job), following
        it live until it finishes or is deleted.  Called inside a running
        asyncio loop, the stream is a task on that loop and effects run there;
        otherwise it runs on a background thread that sets the signal (effects
        run on that thread, under the module's graph lock).  The current state
        is read over HTTP first, so the value is there at once and an unknown
        job raises NotFound here."""
        job_id = _id(job_id)
        first = Job(self.job(job_id))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None and not is_thread_safety_enabled():
            raise RuntimeError("galvani.client: signal() outside an asyncio loop follows the job from a "
                               "background thread, which needs set_thread_safety(True)")
        sig = Signal(first, equal=operator.eq)
        state = _Follow(first)
        if not first.finished:
            state.start(_follow(self, job_id, sig, state), loop, job_id)
        else:
            state.settle(None)
        return JobSignal(sig, job_id, state)


#: The biggest stream message accepted: a snapshot holds up to 1000 jobs with
#: their commands (each up to 128 KiB), far beyond websockets' 1 MiB default.
_MAX_MESSAGE = 256 * 1024 * 1024


def _refused_status(exc: Exception) -> Optional[int]:
    """The HTTP status of a refused WebSocket handshake (websockets 10's
    InvalidStatusCode, 14's InvalidStatus), None for any other failure."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class _Backoff:
    """Reconnect delays: 50 ms doubling to 2 s, each with up to half of it
    random, so clients dropped together (a daemon restart) do not come back
    together."""

    FIRST, MOST = 0.05, 2.0

    def __init__(self) -> None:
        self._delay = self.FIRST

    def reset(self) -> None:
        self._delay = self.FIRST

    def next(self) -> float:
        delay = self._delay
        self._delay = min(delay * 2, self.MOST)
        return delay * (0.5 + random.random() / 2)


# ---- watch() ---------------------------------------------------------------------


class Watch:
    """The messages of client.watch(), as an async iterator or, outside a
    running loop, a blocking one.  Close it when done (``async with`` /
    ``with``, ``aclose()`` / ``close()``, or leave the loop by ending the
    iteration): that closes the WebSocket.

    The blocking form drives the stream on a private event loop that runs only
    inside ``next()``: between two messages nothing answers the daemon's
    pings, so a consumer that holds a message for over a minute is dropped and
    reconnected (it then gets a new snapshot)."""

    def __init__(self, messages: AsyncIterator[dict]) -> None:
        self._messages = messages
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> dict:
        return await self._messages.__anext__()

    async def aclose(self) -> None:
        await self._messages.aclose()

    async def __aenter__(self) -> "Watch":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> dict:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(self._messages.__anext__())
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            try:
                loop.run_until_complete(self._messages.aclose())
            finally:
                loop.close()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- signal() --------------------------------------------------------------------


#: How often a follower that outlived its cancel is cancelled again (_Follow._cancel).
_RECANCEL_S = 0.05


class _Follow:
    """What the follower and its JobSignal share.  It never references the
    JobSignal, so dropping the last JobSignal stops the follower (a finalizer
    calls stop())."""

    def __init__(self, first: Job) -> None:
        self.last = first
        self.removed = False
        self.done: concurrent.futures.Future = concurrent.futures.Future()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task: Optional[asyncio.Task] = None

    def start(self, coro: Any, loop: Optional[asyncio.AbstractEventLoop], job_id: int) -> None:
        if loop is not None:
            self._loop, self._task = loop, loop.create_task(coro)
            # A done callback runs after the coroutine's frame is gone, so
            # whoever wakes from wait() finds the follower's references released.
            self._task.add_done_callback(self._ended)
            return
        loop = asyncio.new_event_loop()
        self._loop, self._task = loop, loop.create_task(coro)

        def run() -> None:
            try:
                loop.run_until_complete(self._task)
            except BaseException:  # noqa: BLE001 - the outcome is read from the task
                pass
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                self._ended(self._task)

        threading.Thread(target=run, name=f"galvani-job-{job_id}", daemon=True).start()

    def _ended(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self.settle(None)
        else:
            self.settle(task.exception())

    def settle(self, error: Optional[BaseException]) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(self.last)
        else:
            self.done.set_exception(error)

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is None or task is None:
            return
        try:
            loop.call_soon_threadsafe(self._cancel)
        except RuntimeError:
            pass  # its loop is closed: the follower has ended already

    def _cancel(self) -> None:
        # On the follower's loop.  Python 3.11's asyncio.wait_for, which
        # websockets' open_timeout uses, drops a cancel that lands as the
        # handshake completes (CPython gh-86296, fixed in 3.12): the follower
        # would go on following.  So cancel again until the task has ended.
        task, loop = self._task, self._loop
        if task is not None and loop is not None and task.cancel():
            loop.call_later(_RECANCEL_S, self._cancel)


async def _follow(client: Client, job_id: int, sig: Signal, state: _Follow) -> None:
    try:
        async with contextlib.aclosing(client._messages(job_id, True)) as messages:
            async for msg in messages:
                kind = msg.get("type")
                if kind == "snapshot":
                    found = [j for j in msg.get("jobs", ()) if j.get("id") == job_id]
                    if not found:
                        continue
                    data = found[0]
                elif kind == "job":
                    data = msg["job"]
                elif kind == "removed":
                    state.removed = True
                    return
                else:
                    continue
                job = Job(data)
                state.last = job
                sig.set(job)
                if job.finished:
                    return
    except NotFound:
        # Reconnected after the job was deleted: it is gone, its last state stays.
        state.removed = True


class JobSignal(ReadonlySignal):
    """client.signal(job_id): a ReadonlySignal whose value is the job's latest
    state (a Job).  It follows the job until the job finishes (the final state
    is always the last value), is deleted (``removed``), or close() is called;
    ``wait()`` blocks until then and returns the last Job."""

    __slots__ = ("job_id", "_state", "_finalizer")

    def __init__(self, signal: Signal, job_id: int, state: _Follow) -> None:
        super().__init__(signal)
        self.job_id = job_id
        self._state = state
        self._finalizer = weakref.finalize(self, state.stop)

    @property
    def removed(self) -> bool:
        """The job was deleted while followed; the value is its last state."""
        return self._state.removed

    @property
    def following(self) -> bool:
        return not self._state.done.done()

    def wait(self, timeout: Optional[float] = None) -> Job:
        """Block until the follower ends; the last Job.  Raises what ended it
        if that was an error (a 401 on reconnect), TimeoutError after
        ``timeout`` seconds.  Inside a running loop use ``await wait_async()``."""
        return self._state.done.result(timeout)

    async def wait_async(self) -> Job:
        # shield: cancelling this wait must not cancel the shared future.
        return await asyncio.shield(asyncio.wrap_future(self._state.done))

    def close(self) -> None:
        """Stop following; the value stays the last state seen."""
        self._state.stop()

    def __enter__(self) -> "JobSignal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JobSignal({self.job_id}, {self._signal.peek()!r})"
