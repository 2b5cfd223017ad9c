"""Resource: async data loading driven by reactive params (reaktiv's
resource()).  An Effect watches ``params``; each change cancels the load in
flight (its cancellation event is set) and starts the loader on the running
asyncio loop; status, value, error and is_loading are signals."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import Any, Awaitable, Callable, Generic, Optional, TypeVar

from ._core import ComputeSignal, Signal, untracked
from ._descriptor import PerInstanceDescriptor, owner_getter

P = TypeVar("P")
T = TypeVar("T")


class ResourceStatus(str, Enum):
    IDLE = "idle"
    ERROR = "error"
    LOADING = "loading"
    RELOADING = "reloading"
    RESOLVED = "resolved"
    LOCAL = "local"


@dataclass
class PreviousResourceState:
    status: ResourceStatus


@dataclass
class ResourceLoaderParams(Generic[P]):
    params: P
    previous: PreviousResourceState
    cancellation: asyncio.Event


@dataclass
class ResourceSnapshot(Generic[T]):
    status: ResourceStatus
    value: Optional[T] = None
    error: Optional[Exception] = None


class ResourceDescriptor(PerInstanceDescriptor["Resource"]):
    """``@resource`` on a params method, with ``@<name>.loader`` on the
    loader method."""

    initialize_eagerly = True

    def __init__(self, params: Callable[[Any], Any]) -> None:
        super().__init__()
        self._params = params
        self._loader: Optional[Callable[..., Awaitable[Any]]] = None

    def loader(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        self._loader = func
        return self

    def _create(self, instance: object) -> "Resource":
        if self._loader is None:
            raise TypeError("@resource needs a loader: decorate one with @<name>.loader")
        owner, params, loader = owner_getter(instance), self._params, self._loader
        return Resource(params=lambda: params(owner()), loader=lambda p: loader(owner(), p))


class Resource(Generic[P, T]):
    def __new__(cls, params: Any = None, loader: Any = None):
        if loader is None and callable(params):
            return ResourceDescriptor(params)
        return super().__new__(cls)

    def __init__(self, params: Callable[[], Optional[P]], loader: Callable[[ResourceLoaderParams[P]], Awaitable[T]]):
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise RuntimeError(
                "Resource must be created within an asyncio context. "
                "Make sure you're inside an async function and using asyncio.run() or similar."
            ) from exc
        from . import Effect

        self._params = params
        self._loader = loader
        self._value = Signal(None)
        self._error = Signal(None)
        self._status = Signal(ResourceStatus.IDLE)
        self._loading = Signal(False)
        self._reload = Signal(0)
        self._previous_status = ResourceStatus.IDLE
        self._cancel: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._destroyed = False
        self._watcher = Effect(self._watch)

    # -- loading ------------------------------------------------------------

    def _watch(self) -> None:
        params = self._params()
        reload = self._reload() > 0 and untracked(lambda: self._status() != ResourceStatus.IDLE)
        with untracked():
            self._abort()
            if params is None:
                self._status.set(ResourceStatus.IDLE)
                self._loading.set(False)
                return
            self._start(params, reload)

    def _abort(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def _start(self, params: P, is_reload: bool) -> None:
        self._status.set(ResourceStatus.RELOADING if is_reload else ResourceStatus.LOADING)
        self._loading.set(True)
        self._error.set(None)
        cancel = asyncio.Event()
        self._cancel = cancel
        request = ResourceLoaderParams(params, PreviousResourceState(self._previous_status), cancel)
        self._task = self._loop.create_task(self._run(request, cancel))

    async def _run(self, request: ResourceLoaderParams[P], cancel: asyncio.Event) -> None:
        try:
            result = await self._loader(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - becomes the resource's error
            if cancel.is_set():
                return
            self._error.set(exc)
            self._status.set(ResourceStatus.ERROR)
            self._loading.set(False)
            self._previous_status = ResourceStatus.ERROR
            return
        if cancel.is_set():
            return
        self._value.set(result)
        self._status.set(ResourceStatus.RESOLVED)
        self._loading.set(False)
        self._error.set(None)
        self._previous_status = ResourceStatus.RESOLVED

    # -- public -------------------------------------------------------------

    def reload(self) -> None:
        """Run the loader again with the current params."""
        self._reload.update(lambda n: n + 1)

    @property
    def value(self) -> Any:
        return self._value.as_readonly()

    @property
    def error(self) -> Any:
        return self._error.as_readonly()

    @property
    def is_loading(self) -> Any:
        return self._loading.as_readonly()

    @property
    def status(self) -> Any:
        return self._status.as_readonly()

    @property
    def cancellation_event(self) -> Optional[asyncio.Event]:
        return self._cancel

    @property
    def previous_status(self) -> ResourceStatus:
        return self._previous_status

    @property
    def snapshot(self) -> ComputeSignal:
        def compute() -> ResourceSnapshot:
            status = self._status()
            if status == ResourceStatus.ERROR:
                return ResourceSnapshot(status, None, self._error())
            return ResourceSnapshot(status, self._value(), None)

        return ComputeSignal(compute)

    def has_value(self) -> bool:
        return self._value() is not None and self._status() != ResourceStatus.ERROR

    def set(self, value: T) -> None:
        """Set the value locally (status LOCAL), cancelling a load in flight."""
        self._abort()
        self._value.set(value)
        self._status.set(ResourceStatus.LOCAL)
        self._loading.set(False)
        self._error.set(None)

    def update(self, update_fn: Callable[[Optional[T]], T]) -> None:
        self.set(update_fn(untracked(self._value)))

    def destroy(self) -> None:
        """Stop watching params and cancel the load in flight."""
        if self._destroyed:
            return
        self._destroyed = True
        self._watcher.dispose()
        self._abort()
        self._status.set(ResourceStatus.IDLE)
        self._loading.set(False)

    dispose = destroy


class _ResourceFactory:
    def __call__(self, params: Any = None, loader: Any = None, /, **kw: Any):
        params = kw.pop("params", params)
        loader = kw.pop("loader", loader)
        return Resource(params=params, loader=loader)

    def __getitem__(self, value_type: Any) -> "_ResourceFactory":
        del value_type
        return self


resource = _ResourceFactory()
