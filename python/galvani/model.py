"""ReactiveModel and field(): classes whose attributes are signals."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ._core import Signal
from ._descriptor import PerInstanceDescriptor

_MISSING = object()


class SignalField:
    """``name = field(default)`` or ``field(factory=...)``: reading
    ``obj.name`` gives the instance's Signal, assigning ``obj.name = v`` sets it."""

    def __init__(self, default: Any = _MISSING, /, *, factory: Optional[Callable[[], Any]] = None) -> None:
        if (default is _MISSING) == (factory is None):
            raise TypeError("field() requires exactly one default value or a factory")
        self._default = default
        self._factory = factory
        self._name: Optional[str] = None

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = f"__galvani_field_{name}"

    def _initial(self) -> Any:
        return self._factory() if self._factory is not None else self._default

    def _signal(self, instance: object, value: Any = _MISSING) -> Signal:
        store = vars(instance)
        sig = store.get(self._name)
        if sig is None:
            sig = Signal(self._initial() if value is _MISSING else value)
            store[self._name] = sig
        elif value is not _MISSING:
            sig.set(value)
        return sig

    def __get__(self, instance: Optional[object], owner: Optional[type] = None) -> Any:
        if instance is None:
            return self
        return self._signal(instance)

    def __set__(self, instance: object, value: Any) -> None:
        self._signal(instance, value)

    def initialize(self, instance: object, value: Any) -> Signal:
        return self._signal(instance, value)


field = SignalField


class ReactiveModel:
    """A base class: keyword arguments initialise fields, ``@effect`` methods
    start with the instance, ``dispose()`` stops what the instance owns."""

    def __init__(self, **fields: Any) -> None:
        self._galvani_owned: list = []
        declared = self._galvani_fields()
        unknown = fields.keys() - declared.keys()
        if unknown:
            raise TypeError(f"Unknown reactive field(s): {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            declared[name].initialize(self, value)
        seen: set = set()
        for cls in reversed(type(self).mro()):
            for name, member in tuple(vars(cls).items()):
                if name in seen:
                    continue
                seen.add(name)
                if isinstance(member, PerInstanceDescriptor) and member.initialize_eagerly:
                    member.initialize(self)

    def _galvani_fields(self) -> Dict[str, SignalField]:
        found: Dict[str, SignalField] = {}
        for cls in type(self).mro():
            for name, member in vars(cls).items():
                if isinstance(member, SignalField) and name not in found:
                    found[name] = member
        return found

    def _galvani_retain(self, value: object) -> None:
        owned = self.__dict__.setdefault("_galvani_owned", [])
        if not any(v is value for v in owned):
            owned.append(value)

    def dispose(self) -> None:
        """Dispose the effects and destroy the resources the model owns."""
        owned = self.__dict__.get("_galvani_owned", [])
        for value in reversed(owned):
            if hasattr(value, "dispose"):
                value.dispose()
            elif hasattr(value, "destroy"):
                value.destroy()
        owned.clear()
