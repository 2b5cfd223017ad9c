"""LinkedSignal: a computed value that may also be written; a write holds
until the computation's dependencies change (reaktiv's / Angular's
linkedSignal).

Built from three graph nodes: ``_base`` (a ComputeSignal running the user's
computation, which stamps each of its runs), ``_manual`` (a Signal holding the
last write with the stamp it overrides) and the LinkedSignal itself, a
ComputeSignal returning the write while its stamp is current and the
computation's value otherwise.  Everything tracked is tracked by libgalvani.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Optional, TypeVar

from ._core import ComputeSignal, Signal, untracked
from ._descriptor import PerInstanceDescriptor, is_instance_method, owner_getter

T = TypeVar("T")


class PreviousState(Generic[T]):
    """What the advanced pattern's computation gets: the linked signal's
    previous value and the source value it was computed from."""

    __slots__ = ("value", "source")

    def __init__(self, value: T, source: Any) -> None:
        self.value = value
        self.source = source

    def __repr__(self) -> str:
        return f"PreviousState(value={self.value!r}, source={self.source!r})"


class _State:
    __slots__ = ("runs", "last", "has_last", "prev_source")

    def __init__(self) -> None:
        self.runs = 0
        self.last: Any = None
        self.has_last = False
        self.prev_source: Any = None


class LinkedSignal(ComputeSignal):
    """``LinkedSignal(fn)`` or ``LinkedSignal(source=..., computation=fn)``
    (fn(source_value, previous: PreviousState | None)); ``set``/``update``
    override the value until the source changes."""

    __slots__ = ("_base", "_manual", "_state")

    def __new__(cls, computation_or_source=None, *, source=None, computation=None, equal=None):
        if source is not None and computation is not None:
            source_fn = source.get if isinstance(source, Signal) else source
            if not callable(source_fn):
                raise ValueError("LinkedSignal: source must be a signal or a callable")
            user = computation
            simple = False
        elif computation_or_source is not None and callable(computation_or_source):
            source_fn = None
            user = computation_or_source
            simple = True
        else:
            raise ValueError(
                "LinkedSignal requires either:\n"
                "1. A computation function: LinkedSignal(lambda: source())\n"
                "2. Source and computation: LinkedSignal(source=signal, computation=func)"
            )
        state = _State()

        def base() -> Any:
            state.runs += 1
            if simple:
                return (state.runs, user())
            src = source_fn()  # tracked
            prev = PreviousState(state.last, state.prev_source) if state.has_last and state.last is not None else None
            with untracked():
                value = user(src, prev)
            state.prev_source = src
            return (state.runs, value)

        base_node = ComputeSignal(base)
        manual = Signal(None)

        def linked() -> Any:
            stamp, value = base_node()
            written = manual()
            if written is not None and written[1] == stamp:
                value = written[0]
            state.last, state.has_last = value, True
            return value

        self = super().__new__(cls, linked, equal=equal)
        self._base, self._manual, self._state = base_node, manual, state
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set(self, new_value: Any, /) -> None:
        stamp = untracked(self._base)[0]
        # The value is the write from now on, read or not (PreviousState).
        self._state.last, self._state.has_last = new_value, True
        self._manual.set((new_value, stamp))

    def update(self, update_fn: Callable[[Any], Any], /) -> None:
        self.set(update_fn(untracked(self)))

    def __repr__(self) -> str:
        try:
            return f"LinkedSignal(value={untracked(self)!r})"
        except Exception as exc:  # noqa: BLE001 - repr must not raise
            return f"LinkedSignal(error_displaying_value: {exc})"


Linked = LinkedSignal


class LinkedDescriptor(PerInstanceDescriptor[LinkedSignal]):
    def __init__(self, func: Callable[[Any], Any], *, equal: Optional[Callable[[Any, Any], bool]] = None) -> None:
        super().__init__()
        self._func = func
        self._equal = equal

    def _create(self, instance: object) -> LinkedSignal:
        func, owner = self._func, owner_getter(instance)
        return LinkedSignal(lambda: func(owner()), equal=self._equal)


class _LinkedFactory:
    """``@linked`` / ``@linked(equal=...)`` / ``linked(fn)``."""

    def __call__(self, func=None, /, *, source=None, computation=None, equal=None):
        if func is None and source is None and computation is None:
            return lambda f: self(f, equal=equal)
        if func is not None and is_instance_method(func):
            return LinkedDescriptor(func, equal=equal)
        return LinkedSignal(func, source=source, computation=computation, equal=equal)

    def __getitem__(self, value_type: Any) -> "_LinkedFactory":
        del value_type
        return self


linked = _LinkedFactory()
