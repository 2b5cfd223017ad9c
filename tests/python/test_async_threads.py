"""Async effects on the running loop, to_async_iter, Resource; the graph
used from several threads (reaktiv's thread-safety model)."""

import asyncio
import threading

import pytest

from galvani import (
    Computed,
    Effect,
    Resource,
    ResourceStatus,
    Signal,
    batch,
    is_thread_safety_enabled,
    set_thread_safety,
    to_async_iter,
)


@pytest.mark.asyncio
async def test_async_effect_runs_and_reruns_once_per_change():
    a = Signal(1)
    b = Computed(lambda: a() + 1)
    c = Computed(lambda: a() + 2)
    seen = []

    async def track():
        seen.append((b(), c()))

    eff = Effect(track)
    await asyncio.sleep(0)
    a.set(2)
    await asyncio.sleep(0)
    assert seen == [(2, 3), (3, 4)]
    eff.dispose()


@pytest.mark.asyncio
async def test_async_effect_continues_on_the_loop_and_cleans_up():
    s = Signal("a")
    log = []
    gate = asyncio.Event()

    async def run(on_cleanup):
        value = s()  # read before the first await: tracked
        on_cleanup(lambda: log.append(f"cleanup {value}"))
        await gate.wait()
        log.append(f"done {value}")

    eff = Effect(run)
    assert eff._task is not None  # the rest runs as a task on this loop
    gate.set()
    await eff._task
    assert log == ["done a"]
    gate.clear()
    s.set("b")  # cleanup of run "a", then run "b" starts
    assert log == ["done a", "cleanup a"]
    task_b = eff._task
    s.set("c")  # run "b" still waiting: cancelled, its cleanup runs
    with pytest.raises(asyncio.CancelledError):
        await task_b
    gate.set()
    await eff._task
    assert log == ["done a", "cleanup a", "cleanup b", "done c"]
    eff.dispose()
    assert log[-1] == "cleanup c"


@pytest.mark.asyncio
async def test_to_async_iter():
    s = Signal(0)
    got = []

    async def consume():
        async for value in to_async_iter(s):
            got.append(value)
            if value == 2:
                break

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    s.set(1)
    await asyncio.sleep(0)
    s.set(2)
    await task
    assert got == [0, 1, 2]


@pytest.mark.asyncio
async def test_resource_loads_and_reloads_on_params_change():
    user_id = Signal(1)
    release = {}

    async def loader(p):
        fut = asyncio.get_running_loop().create_future()
        release[p.params] = fut
        return await fut

    r = Resource(params=lambda: {"id": user_id()}["id"], loader=loader)
    assert r.status() == ResourceStatus.LOADING and r.is_loading()
    await asyncio.sleep(0)
    release[1].set_result("alice")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert r.status() == ResourceStatus.RESOLVED and r.value() == "alice"
    user_id.set(2)
    await asyncio.sleep(0)
    release[2].set_exception(ValueError("gone"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert r.status() == ResourceStatus.ERROR and isinstance(r.error(), ValueError)
    r.set("local")
    assert r.status() == ResourceStatus.LOCAL and r.value() == "local"
    r.destroy()


def test_resource_needs_a_loop():
    with pytest.raises(RuntimeError, match="asyncio context"):
        Resource(params=lambda: 1, loader=lambda p: None)


def test_thread_safety_switch():
    assert is_thread_safety_enabled()
    set_thread_safety(False)
    try:
        assert not is_thread_safety_enabled()
        s = Signal(1)
        s.set(2)
        assert s() == 2
    finally:
        set_thread_safety(True)


def test_many_threads_update_one_graph():
    counter = Signal(0)
    doubled = Computed(lambda: counter() * 2)
    seen = []
    e = Effect(lambda: seen.append(doubled()))
    n_threads, n_updates = 8, 500
    start = threading.Barrier(n_threads)

    def work():
        start.wait()
        for _ in range(n_updates):
            counter.update(lambda x: x + 1)  # atomic under the graph lock

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = n_threads * n_updates
    assert counter() == total
    assert doubled() == 2 * total
    assert seen[-1] == 2 * total
    assert seen == sorted(seen) and len(seen) == total + 1  # every write ran it once, in order
    e.dispose()


def test_effects_created_and_dropped_on_other_threads():
    s = Signal(0)
    runs = []
    lock = threading.Lock()

    def work(i):
        e = Effect(lambda: (lambda v: (lock.acquire(), runs.append((i, v)), lock.release()))(s()))
        with batch():
            s.update(lambda x: x + 1)
        e.dispose()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s() == 6
