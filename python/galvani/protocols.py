"""Structural types of reaktiv: anything readable, anything writable."""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class ReadableSignal(Protocol[T]):
    """Signal, ComputeSignal, ReadonlySignal, LinkedSignal."""

    def __call__(self) -> T: ...

    def get(self) -> T: ...


@runtime_checkable
class WritableSignal(ReadableSignal[T], Protocol[T]):
    """Signal and LinkedSignal."""

    def set(self, value: T, /) -> None: ...

    def update(self, update_fn: Callable[[T], T], /) -> None: ...
