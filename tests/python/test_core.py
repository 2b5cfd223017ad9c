"""Signal, Computed, Effect, batch, untracked: reaktiv's documented
behaviour (docs and docstrings of reaktiv 0.23) and the post's examples."""

import gc

import pytest

from galvani import (
    ComputeSignal,
    Computed,
    Effect,
    ReadonlySignal,
    Signal,
    batch,
    computed,
    effect,
    untracked,
)


def test_post_examples_verbatim(capsys):
    job_progress = Signal(0)
    logger = Effect(lambda: print(f"Progress: {job_progress()}%"))
    job_progress.update(lambda x: x + 1)
    job_progress.update(lambda x: x + 1)
    assert capsys.readouterr().out == "Progress: 0%\nProgress: 1%\nProgress: 2%\n"
    logger.dispose()


def test_signal_get_set_update_call():
    counter = Signal(0)
    assert counter() == 0 and counter.get() == 0
    counter.set(5)
    counter.update(lambda x: x + 1)
    assert counter() == 6
    name = Signal("Alice")
    name.update(lambda s: s.upper())
    assert name() == "ALICE"


def test_default_equality_is_identity():
    obj = {"x": 1}
    s = Signal(obj)
    runs = []
    e = Effect(lambda: runs.append(s()))
    s.set(obj)  # same object: nothing
    assert len(runs) == 1
    s.set({"x": 1})  # equal but another object: notifies
    assert len(runs) == 2
    e.dispose()


def test_custom_equality():
    user = Signal({"name": "Alice", "age": 30}, equal=lambda a, b: a == b)
    runs = []
    e = Effect(lambda: runs.append(user()["age"]))
    user.set({"name": "Alice", "age": 30})
    assert runs == [30]
    user.set({"name": "Alice", "age": 31})
    assert runs == [30, 31]
    e.dispose()


def test_equality_receives_old_then_new_and_raising_means_different():
    seen = []

    def eq(old, new):
        seen.append((old, new))
        raise ValueError("boom")

    s = Signal(1, equal=eq)
    runs = []
    e = Effect(lambda: runs.append(s()))
    s.set(2)
    assert seen == [(1, 2)]
    assert runs == [1, 2]
    e.dispose()


def test_always_notify_equality_on_same_object():
    obj = []
    s = Signal(obj, equal=lambda a, b: False)
    runs = []
    e = Effect(lambda: runs.append(len(s())))
    obj.append(1)
    s.set(obj)  # mutated in place, re-set: the equality says "changed"
    assert runs == [0, 1]
    e.dispose()


def test_readonly():
    _counter = Signal(0)
    counter = _counter.as_readonly()
    assert isinstance(counter, ReadonlySignal)
    assert counter is _counter.as_readonly()
    _counter.update(lambda x: x + 1)
    assert counter() == 1 and counter.get() == 1
    assert not hasattr(counter, "set")


def test_computed_lazy_and_cached():
    x, y = Signal(10), Signal(20)
    calls = []

    def product():
        calls.append(1)
        return x() * y()

    result = Computed(product)
    assert calls == []
    assert result() == 200 and result() == 200
    assert len(calls) == 1
    x.set(5)
    assert len(calls) == 1
    assert result() == 100
    assert len(calls) == 2
    assert isinstance(result, ComputeSignal) and isinstance(result, Signal)


def test_computed_decorator_forms():
    price, qty = Signal(100), Signal(2)

    @Computed
    def total():
        return price() * qty()

    @computed(equal=lambda a, b: a // 10 == b // 10)
    def bucket():
        return price()

    assert total() == 200
    assert bucket() == 100
    assert Computed[int](lambda: 3)() == 3


def test_computed_set_is_refused():
    c = Computed(lambda: 1)
    with pytest.raises(AttributeError, match="Cannot manually set value of ComputeSignal"):
        c.set(2)


def test_computed_error_cached_and_reraised_until_dependency_changes():
    x = Signal(0)
    runs = []

    def inverse():
        runs.append(1)
        return 100 / x()

    c = Computed(inverse)
    with pytest.raises(ZeroDivisionError) as first:
        c()
    with pytest.raises(ZeroDivisionError) as second:
        c()
    assert first.value is second.value  # the same exception object, cached
    assert len(runs) == 1
    # ... and to a reader through another computed
    d = Computed(lambda: c() + 1)
    with pytest.raises(ZeroDivisionError):
        d()
    x.set(5)
    assert c() == 20.0 and d() == 21.0


def test_error_caught_inside_reader():
    x = Signal(0)
    c = Computed(lambda: 1 / x())

    def safe():
        try:
            return c()
        except ZeroDivisionError:
            return "n/a"

    s = Computed(safe)
    assert s() == "n/a"
    x.set(2)
    assert s() == 0.5


def test_cycle_is_runtime_error():
    a = Computed(lambda: b() + 1)
    b = Computed(lambda: a() + 1)
    with pytest.raises(RuntimeError, match="Circular dependency detected"):
        a()


def test_write_inside_computed_is_refused():
    s = Signal(0)
    messages = []

    def bad():
        try:
            s.set(1)
        except RuntimeError as exc:
            messages.append(str(exc))
        return s()

    assert Computed(bad)() == 0
    assert messages == ["Side effect detected: Cannot set Signal from within a ComputeSignal computation"]


def test_diamond_runs_once_glitch_free():
    a = Signal(1)
    b = Computed(lambda: a() + 1)
    c = Computed(lambda: a() + 2)
    seen = []
    e = Effect(lambda: seen.append((b(), c())))
    a.set(2)
    assert seen == [(2, 3), (3, 4)]
    e.dispose()


def test_equality_cutoff_in_computed():
    s = Signal(1)
    parity = Computed(lambda: s() % 2 == 0)
    runs = []
    e = Effect(lambda: runs.append(parity()))
    s.set(3)  # still odd: False is False
    assert runs == [False]
    s.set(4)
    assert runs == [False, True]
    e.dispose()


def test_dynamic_dependencies():
    flag, a, b = Signal(True), Signal("a"), Signal("b")
    runs = []
    e = Effect(lambda: runs.append(a() if flag() else b()))
    b.set("b2")
    assert runs == ["a"]
    flag.set(False)
    a.set("a2")
    assert runs == ["a", "b2"]
    e.dispose()


def test_effect_cleanup_return_and_registrar_in_order():
    user_id = Signal(1)
    log = []

    def subscribe():
        uid = user_id()
        log.append(f"sub {uid}")
        return lambda: log.append(f"unsub {uid}")

    e1 = Effect(subscribe)

    def with_registrar(on_cleanup):
        uid = user_id()
        on_cleanup(lambda: log.append(f"first {uid}"))
        on_cleanup(lambda: log.append(f"second {uid}"))

    e2 = Effect(with_registrar)
    user_id.set(2)
    assert log == ["sub 1", "unsub 1", "sub 2", "first 1", "second 1"]
    log.clear()
    e1.dispose()
    e2.dispose()
    assert log == ["unsub 2", "first 2", "second 2"]
    user_id.set(3)
    assert log == ["unsub 2", "first 2", "second 2"]


def test_effect_dispose_stops_it():
    count = Signal(0)
    runs = []
    e = Effect(lambda: runs.append(count()))
    count.set(1)
    e.dispose()
    e.dispose()  # idempotent
    count.set(2)
    assert runs == [0, 1]


def test_effect_exception_printed_and_effect_lives_on(capsys):
    s = Signal(1)
    runs = []

    def fragile():
        runs.append(s())
        if s() == 2:
            raise ValueError("effect failed")

    e = Effect(fragile)
    s.set(2)
    assert "ValueError: effect failed" in capsys.readouterr().err
    s.set(3)
    assert runs == [1, 2, 3]
    e.dispose()


def test_base_exception_in_effect_reaches_the_writer():
    s = Signal(0)

    def interrupt():
        if s() == 1:
            raise KeyboardInterrupt

    e = Effect(interrupt)
    with pytest.raises(KeyboardInterrupt):
        s.set(1)
    e.dispose()


def test_effect_cycle_is_runtime_error():
    s = Signal(0)
    # Its first run re-triggers it for ever: the flush gives up, as reaktiv's.
    with pytest.raises(RuntimeError, match="Reactive cycle detected"):
        Effect(lambda: s.set(s() + 1))
    t = Signal(0)
    e = Effect(lambda: t() < 1 or s.set(s() + 1))
    with pytest.raises(RuntimeError, match="Reactive cycle detected"):
        t.set(1)
    e.dispose()


def test_effect_write_converges():
    s, t = Signal(1), Signal(0)
    e = Effect(lambda: t.set(s() * 10))
    s.set(2)
    assert t() == 20
    e.dispose()


def test_unreferenced_effect_is_collected(capsys):
    count = Signal(0)
    Effect(lambda: print("saw", count()))  # not stored: runs once, then collected
    count.set(1)
    assert capsys.readouterr().out == "saw 0\n"


def test_effect_in_reference_cycle_collected_by_gc():
    count = Signal(0)
    runs = []

    class Holder:
        def __init__(self):
            self.e = Effect(lambda: runs.append((self.e if hasattr(self, "e") else None, count())[1]))

    Holder()
    gc.collect()
    count.set(1)
    assert len(runs) == 1


def test_effect_cleanup_runs_when_collected():
    s = Signal(0)
    log = []

    def fn(on_cleanup):
        s()
        on_cleanup(lambda: log.append("cleaned"))

    e = Effect(fn)
    del e
    assert log == ["cleaned"]


def test_effect_disposing_itself_from_its_run():
    s = Signal(0)
    runs, holder = [], {}

    def fn():
        runs.append(s())
        if s() == 1:
            holder["e"].dispose()
            del holder["e"]

    holder["e"] = Effect(fn)
    s.set(1)
    s.set(2)
    assert runs == [0, 1]


def test_effect_created_in_effect_is_not_owned():
    outer_sig, inner_sig = Signal(0), Signal(0)
    inner_runs, keep = [], []

    def outer():
        if outer_sig() == 0:
            keep.append(Effect(lambda: inner_runs.append(inner_sig())))

    o = Effect(outer)
    outer_sig.set(1)  # outer re-runs; the inner effect is still referenced
    inner_sig.set(1)
    assert inner_runs == [0, 1]
    o.dispose()
    keep.clear()


def test_effect_decorator_and_method_descriptor():
    s = Signal(1)
    runs = []

    @effect
    def log_it():
        runs.append(s())

    s.set(2)
    assert runs == [1, 2]
    log_it.dispose()

    class Thing:
        @effect
        def watch(self):
            runs.append(("m", s()))

    t = Thing()
    w = t.watch
    assert w is t.watch
    s.set(3)
    assert runs[-1] == ("m", 3)
    w.dispose()


def test_batch_runs_effects_once_with_final_values():
    x, y = Signal(1), Signal(2)
    seen = []
    e = Effect(lambda: seen.append((x(), y())))
    with batch():
        x.set(10)
        y.set(20)
        assert x() == 10  # reads inside see the new value
    assert seen == [(1, 2), (10, 20)]
    with batch():
        x.set(1)
        with batch():
            x.set(2)
            x.set(3)
        x.set(4)
    assert seen == [(1, 2), (10, 20), (4, 20)]
    e.dispose()


def test_batch_back_to_start_value_changes_nothing():
    x = Signal(1)
    seen = []
    e = Effect(lambda: seen.append(x()))
    one = x()
    with batch():
        x.set(5)
        x.set(one)
    assert seen == [1]
    e.dispose()


def test_batch_exception_still_flushes():
    x = Signal(0)
    seen = []
    e = Effect(lambda: seen.append(x()))
    with pytest.raises(ValueError):
        with batch():
            x.set(1)
            raise ValueError
    assert seen == [0, 1]
    e.dispose()


def test_untracked_forms():
    count, other = Signal(0), Signal(100)
    seen = []

    def fn():
        c = count()
        with untracked():
            o = other()
        o2 = untracked(lambda: other())
        o3 = untracked(other)
        seen.append((c, o, o2, o3))

    e = Effect(fn)
    other.set(200)
    assert seen == [(0, 100, 100, 100)]
    count.set(1)
    assert seen[-1] == (1, 200, 200, 200)
    e.dispose()


def test_peek_and_repr():
    s = Signal([1])
    assert repr(s) == "Signal(value=[1])"
    c = Computed(lambda: len(s()))
    assert repr(c) == "Computed(value=None)"  # not computed yet
    c()
    assert repr(c) == "Computed(value=1)"


def test_generic_alias():
    assert Signal[int] is not None


def test_deep_chain_first_read_and_update():
    base = Signal(0)
    node = base
    chain = []
    for _ in range(1000):
        node = (lambda prev: Computed(lambda: prev() + 1))(node)
        chain.append(node)
    assert node() == 1000  # deeper than the recursion limit allows nested
    base.set(1)
    assert node() == 1001


def test_nodes_released_with_python_objects():
    import galvani

    gc.collect()
    before = galvani._core._stats()
    s = Signal(1)
    c = Computed(lambda: s() + 1)
    e = Effect(lambda: c())
    mid = galvani._core._stats()
    assert mid["signals"] == before["signals"] + 1
    assert mid["computeds"] == before["computeds"] + 1
    assert mid["effects"] == before["effects"] + 1
    del s, c  # the effect still reads them: they live on in the graph
    assert galvani._core._stats()["signals"] == mid["signals"]
    del e
    gc.collect()
    after = galvani._core._stats()
    assert after["signals"] == before["signals"] and after["computeds"] == before["computeds"]
