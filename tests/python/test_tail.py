"""LinkedSignal / Linked / @linked / PreviousState, ReactiveModel / field,
the protocols."""

from galvani import (
    Computed,
    Effect,
    Linked,
    LinkedSignal,
    PreviousState,
    ReactiveModel,
    ReadableSignal,
    Signal,
    WritableSignal,
    computed,
    effect,
    field,
    linked,
)


def test_linked_simple_pattern_resets_on_source_change():
    options = Signal(["a", "b", "c"])
    selected = LinkedSignal(lambda: options()[0])
    assert selected() == "a"
    selected.set("b")
    assert selected() == "b"
    options.set(["x", "y"])
    assert selected() == "x"
    selected.update(lambda v: v + "!")
    assert selected() == "x!"
    assert Linked is LinkedSignal


def test_linked_advanced_pattern_sees_previous_state():
    page_count = Signal(10)
    calls = []

    def clamp(count, prev):
        calls.append((count, prev.value if prev else None, prev.source if prev else None))
        if prev is None:
            return 1
        return min(prev.value, count)

    page = LinkedSignal(source=page_count, computation=clamp)
    assert page() == 1
    page.set(8)
    page_count.set(5)
    assert page() == 5
    assert calls[-1] == (5, 8, 10)
    assert isinstance(PreviousState(1, 2), PreviousState)


def test_linked_drives_effects():
    src = Signal(1)
    l = linked(lambda: src() * 10)
    seen = []
    e = Effect(lambda: seen.append(l()))
    l.set(3)
    src.set(2)
    assert seen == [10, 3, 20]
    e.dispose()


def test_reactive_model_fields_computed_effect():
    log = []

    class Counter(ReactiveModel):
        count = field(0)
        items = field(factory=list)

        @computed
        def doubled(self):
            return self.count() * 2

        @effect
        def log_count(self):
            log.append(self.count())

        @linked
        def shown(self):
            return self.count()

    c = Counter(count=2)
    assert c.doubled() == 4 and log == [2]
    c.count = 5  # assignment sets the signal
    assert c.count() == 5 and c.doubled() == 10 and log == [2, 5]
    c.count.update(lambda v: v + 1)
    assert log == [2, 5, 6]
    assert c.items() == []
    c.shown.set(100)
    assert c.shown() == 100
    c.dispose()
    c.count.set(7)
    assert log == [2, 5, 6]


def test_reactive_model_unknown_field():
    class M(ReactiveModel):
        a = field(1)

    try:
        M(b=2)
    except TypeError as exc:
        assert "Unknown reactive field(s): b" in str(exc)
    else:
        raise AssertionError("expected TypeError")


def test_protocols():
    s = Signal(1)
    assert isinstance(s, ReadableSignal) and isinstance(s, WritableSignal)
    assert isinstance(Computed(lambda: 1), ReadableSignal)
    assert isinstance(s.as_readonly(), ReadableSignal)
    assert not isinstance(s.as_readonly(), WritableSignal)
