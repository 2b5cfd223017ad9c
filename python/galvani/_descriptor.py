"""Per-instance reactive members: ``@computed``, ``@effect``, ``@linked`` and
``@resource`` on methods make one node per instance, the way reaktiv does."""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")


def is_instance_method(func: Callable[..., object]) -> bool:
    """A decorator target whose first positional parameter is ``self`` or
    ``cls`` is a method: it gets one node per instance."""
    try:
        params = tuple(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    first = params[0]
    if first.kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return False
    return first.name in ("self", "cls")


def owner_getter(instance: object) -> Callable[[], object]:
    """A function returning `instance`, without keeping it alive when it can
    be weakly referenced (the node must not keep its owner alive)."""
    try:
        ref = weakref.ref(instance)
    except TypeError:
        return lambda: instance

    def owner() -> object:
        current = ref()
        if current is None:
            raise ReferenceError("Reactive owner has been garbage collected")
        return current

    return owner


class PerInstanceDescriptor(Generic[T]):
    """Caches one created node per owner instance (weakly keyed, or in the
    instance's __dict__ when it cannot be weakly referenced)."""

    initialize_eagerly = False

    def __init__(self) -> None:
        self._cache: "weakref.WeakKeyDictionary[object, T]" = weakref.WeakKeyDictionary()
        self._storage_name: Optional[str] = None

    def __set_name__(self, owner: type, name: str) -> None:
        self._storage_name = f"__galvani_{owner.__name__}_{name}"

    def __get__(self, instance: Optional[object], owner: Optional[type] = None) -> Any:
        if instance is None:
            return self
        return self._get_or_create(instance)

    def initialize(self, instance: object) -> T:
        return self._get_or_create(instance)

    def _create(self, instance: object) -> T:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get_or_create(self, instance: object) -> T:
        try:
            return self._cache[instance]
        except KeyError:
            value = self._create(instance)
            self._cache[instance] = value
        except TypeError:
            store = getattr(instance, "__dict__", None)
            if store is None or self._storage_name is None:
                raise TypeError("reactive members need weak-referenceable instances or a __dict__") from None
            value = store.get(self._storage_name)
            if value is not None:
                return value
            value = self._create(instance)
            store[self._storage_name] = value
        retain = getattr(instance, "_galvani_retain", None)
        if retain is not None:
            retain(value)
        return value
