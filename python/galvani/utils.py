"""to_async_iter: a signal's values as an async iterator."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, TypeVar

from .protocols import ReadableSignal

T = TypeVar("T")


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def to_async_iter(signal: ReadableSignal[T], initial: bool = True) -> AsyncIterator[T]:
    """Yield the signal's value now (unless ``initial=False``) and after every
    change, from an Effect feeding a queue; an error the signal raises is
    raised by the iterator.  The effect is disposed when iteration stops."""
    from . import Effect

    queue: "asyncio.Queue[object]" = asyncio.Queue()

    def push() -> None:
        try:
            queue.put_nowait(signal.get())
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            queue.put_nowait(_Failure(exc))

    watcher = Effect(push)
    skip = not initial
    try:
        while True:
            item = await queue.get()
            if skip:
                skip = False
                continue
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        watcher.dispose()
