"""galvani: reaktiv's API (0.23) on libgalvani, the C signals library.

Change ``from reaktiv import Signal, Effect`` into ``from galvani import
Signal, Effect``.  Signal, ComputeSignal, Effect, batch() and untracked() are
C (galvani/_core*.c); the factories, decorators, LinkedSignal, ReactiveModel,
Resource and to_async_iter are thin Python on top of them.  What differs from
reaktiv, and why, is listed in python/README.md.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Generic, Optional, TypeVar

from . import _core
from ._core import (
    ComputeSignal,
    Signal,
    batch,
    is_thread_safety_enabled,
    set_thread_safety,
    untracked,
)
from ._descriptor import PerInstanceDescriptor, is_instance_method, owner_getter

T = TypeVar("T")

__version__ = "0.23.0"


class ReadonlySignal(Generic[T]):
    """A read-only view of a Signal (``Signal.as_readonly()``)."""

    __slots__ = ("_signal", "__weakref__")

    def __init__(self, signal: Signal) -> None:
        self._signal = signal

    def __call__(self) -> T:
        return self._signal.get()

    def get(self) -> T:
        return self._signal.get()

    def __repr__(self) -> str:
        return f"ReadonlySignal(value={self._signal.peek()!r})"


# ---- async effects ---------------------------------------------------------


class _Resume:
    """The rest of a coroutine whose first step already ran (inside the
    effect's tracked run): passes what it yields to the task driving it and
    what the task sends or throws back to it."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Any, first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self):
        coro, out = self._coro, self._first
        self._first = None
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded, not handled
                try:
                    out = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    out = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _continue(coro: Any, first: Any) -> Any:
    return await _Resume(coro, first)


def _schedule_async(coro: Any, first: Any, loop: Any) -> Any:
    """Called by _core for an async effect's run that awaited: run the rest on
    the running loop (or, from another thread, on the loop it was created on)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        return running.create_task(_continue(coro, first))
    if loop is not None and not loop.is_closed():
        return asyncio.run_coroutine_threadsafe(_continue(coro, first), loop)
    coro.close()
    raise RuntimeError("galvani: an async effect awaited, but no asyncio loop is running")


_core._register(ReadonlySignal, _schedule_async)


# ---- effects ---------------------------------------------------------------


def _accepts_cleanup(func: Callable[..., object]) -> bool:
    try:
        return len(inspect.signature(func).parameters) >= 1
    except (TypeError, ValueError):
        return False


def _is_async(func: Callable[..., object]) -> bool:
    return inspect.iscoroutinefunction(func)


class EffectDescriptor(PerInstanceDescriptor["Effect"]):
    """``@effect`` on a method: one Effect per instance, made eagerly by
    ReactiveModel and on first access otherwise."""

    initialize_eagerly = True

    def __init__(self, func: Callable[..., object]) -> None:
        super().__init__()
        self._func = func

    def _create(self, instance: object) -> "Effect":
        func = self._func
        owner = owner_getter(instance)
        with_cleanup = len(inspect.signature(func).parameters) >= 2
        if _is_async(func):
            if with_cleanup:
                async def run(on_cleanup):
                    return await func(owner(), on_cleanup)
            else:
                async def run():
                    return await func(owner())
        elif with_cleanup:
            def run(on_cleanup):
                return func(owner(), on_cleanup)
        else:
            def run():
                return func(owner())
        return Effect(run)


class Effect(_core.Effect):
    """Effect(fn): runs fn now and again whenever what it read changes.

    fn may take an ``on_cleanup`` registrar and may return a cleanup function;
    cleanups run before the next run and on dispose().  An Effect lives as
    long as a reference to it does (reaktiv's weak references): keep it.
    Async functions run on the running asyncio loop (see python/README.md)."""

    __slots__ = ()

    def __new__(cls, func: Callable[..., object]):
        if is_instance_method(func):
            return EffectDescriptor(func)
        return super().__new__(cls, func, _is_async(func), _accepts_cleanup(func))


class _EffectFactory:
    """``effect``: the lowercase, decorator-friendly spelling of Effect."""

    def __call__(self, func: Callable[..., object], /):
        return Effect(func)


effect = _EffectFactory()


# ---- computeds -------------------------------------------------------------


class ComputedDescriptor(PerInstanceDescriptor[ComputeSignal]):
    """``@computed`` on a method: one ComputeSignal per instance."""

    def __init__(self, func: Callable[[Any], Any], *, equal: Optional[Callable[[Any, Any], bool]] = None) -> None:
        super().__init__()
        self._func = func
        self._equal = equal

    def _create(self, instance: object) -> ComputeSignal:
        func, owner = self._func, owner_getter(instance)
        return ComputeSignal(lambda: func(owner()), equal=self._equal)


def _make_computed(func: Callable[..., Any], equal: Optional[Callable[[Any, Any], bool]]):
    if is_instance_method(func):
        return ComputedDescriptor(func, equal=equal)
    return ComputeSignal(func, equal=equal)


class _ComputedFactory:
    """``Computed(fn, *, equal=None)`` / ``@computed`` / ``@computed(equal=...)``
    / ``Computed[int](fn)``: a ComputeSignal, or a per-instance descriptor for
    methods."""

    def __call__(self, func: Optional[Callable[..., Any]] = None, /, *, equal=None):
        if func is None:
            return lambda f: _make_computed(f, equal)
        return _make_computed(func, equal)

    def __getitem__(self, value_type: Any) -> "_ComputedFactory":
        del value_type
        return self


Computed = _ComputedFactory()
computed = Computed

# The long tail, on top of the above.
from .protocols import ReadableSignal, WritableSignal  # noqa: E402
from .linked import Linked, LinkedSignal, PreviousState, linked  # noqa: E402
from .model import ReactiveModel, field  # noqa: E402
from .resource import (  # noqa: E402
    PreviousResourceState,
    Resource,
    ResourceLoaderParams,
    ResourceSnapshot,
    ResourceStatus,
    resource,
)
from .utils import to_async_iter  # noqa: E402

__all__ = [
    "Signal",
    "ReadonlySignal",
    "ComputeSignal",
    "Computed",
    "computed",
    "Effect",
    "effect",
    "ReactiveModel",
    "field",
    "LinkedSignal",
    "Linked",
    "linked",
    "PreviousState",
    "ReadableSignal",
    "WritableSignal",
    "Resource",
    "resource",
    "ResourceStatus",
    "ResourceLoaderParams",
    "PreviousResourceState",
    "ResourceSnapshot",
    "batch",
    "untracked",
    "to_async_iter",
    "set_thread_safety",
    "is_thread_safety_enabled",
]
