"""galvani vs reaktiv on the kairo shapes (deep, broad, diamond, triangle,
avoidable, mux) and a 1,000-node chain, plus one Python-level set -> effect
against a pure-Python list of callbacks.  A benchmark, not a test.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench.py --reaktiv /tmp/reaktiv

--reaktiv DIR is a checkout of reaktiv's repository (its src/ is put on
sys.path); the project does not contain reaktiv.  Each shape checks its
result, as bench/signals does, and prints the time per iteration and the
reaktiv/galvani ratio.
"""

import argparse
import importlib
import os
import sys
import time


def shapes(lib):
    Signal, Computed, Effect = lib.Signal, lib.Computed, lib.Effect

    def deep():
        head = Signal(0)
        cur = head
        for _ in range(50):
            cur = (lambda c: Computed(lambda: c() + 1))(cur)
        runs = [0]
        keep = Effect(lambda: runs.__setitem__(0, runs[0] + 1) or cur())

        def it(i):
            head.set(i)
            assert cur() == i + 50
        return it, (keep,)

    def broad():
        head = Signal(0)
        keep = []
        for i in range(50):
            c = (lambda k: Computed(lambda: head() + k))(i)
            c2 = (lambda c: Computed(lambda: c() + 1))(c)
            keep.append(Effect((lambda c2: lambda: c2())(c2)))
        def it(i):
            head.set(i)
        return it, keep

    def diamond():
        head = Signal(0)
        mids = [(lambda k: Computed(lambda: head() + k))(k) for k in range(5)]
        total = Computed(lambda: sum(m() for m in mids))
        keep = Effect(lambda: total())
        def it(i):
            head.set(i)
            assert total() == 5 * i + 10
        return it, (keep,)

    def triangle():
        head = Signal(0)
        cur, nodes = head, []
        for _ in range(10):
            cur = (lambda c: Computed(lambda: c() + 1))(cur)
            nodes.append(cur)
        total = Computed(lambda: sum(n() for n in nodes))
        keep = Effect(lambda: total())
        def it(i):
            head.set(i)
            assert total() == 10 * i + 55
        return it, (keep,)

    def avoidable():
        head = Signal(0)
        c1 = Computed(lambda: head())
        c2 = Computed(lambda: (c1(), 0)[1])
        c3 = Computed(lambda: c2() + 1)
        c4 = Computed(lambda: c3() + 2)
        c5 = Computed(lambda: c4() + 3)
        runs = [0]
        def eff():
            runs[0] += 1
            c5()
        keep = Effect(eff)
        def it(i):
            head.set(i)
            assert c5() == 6
        return it, (keep,)

    def mux():
        heads = [Signal(0) for _ in range(100)]
        mux_ = Computed(lambda: {i: h() for i, h in enumerate(heads)})
        splits = [(lambda i: Computed(lambda: mux_()[i]))(i) for i in range(100)]
        outs = [(lambda s: Computed(lambda: s() + 1))(s) for s in splits]
        keep = [Effect((lambda o: lambda: o())(o)) for o in outs]
        def it(i):
            k = i % 100
            heads[k].set(i)
            assert outs[k]() == i + 1
        return it, keep

    def chain1000():
        head = Signal(0)
        cur = head
        for _ in range(1000):
            cur = (lambda c: Computed(lambda: c() + 1))(cur)
        keep = Effect(lambda: cur())
        def it(i):
            head.set(i)
            assert cur() == i + 1000
        return it, (keep,)

    def set_effect():
        s = Signal(0)
        seen = [0]
        keep = Effect(lambda: seen.__setitem__(0, s()))
        def it(i):
            s.set(i)
        return it, (keep,)

    return {"deep": deep, "broad": broad, "diamond": diamond, "triangle": triangle,
            "avoidable": avoidable, "mux": mux, "chain1000": chain1000, "set_effect": set_effect}


def callback_list():
    """The pure-Python baseline: a value and a list of callbacks."""
    class Value:
        __slots__ = ("v", "subs")

        def __init__(self, v):
            self.v, self.subs = v, []

        def set(self, v):
            if v is not self.v:
                self.v = v
                for cb in self.subs:
                    cb(v)

    val, seen = Value(0), [0]
    val.subs.append(lambda v: seen.__setitem__(0, v))
    return val.set, ()


def measure(make, budget):
    it, keep = make()
    n, i, start = 0, 1, time.perf_counter()
    while True:
        for _ in range(50):
            it(i)
            i += 1
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            del keep
            return elapsed / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reaktiv", help="a checkout of reaktiv's repository")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per shape and library")
    args = ap.parse_args()
    # reaktiv's first read of the 1,000-node chain nests ~6 Python frames per
    # node; galvani's does not need this (libgalvani resumes deep reads).
    sys.setrecursionlimit(20000)
    libs = {"galvani": importlib.import_module("galvani")}
    if args.reaktiv:
        sys.path.insert(0, os.path.join(args.reaktiv, "src"))
        libs["reaktiv"] = importlib.import_module("reaktiv")
    results = {name: {k: measure(f, args.budget) for k, f in shapes(lib).items()} for name, lib in libs.items()}
    base = measure(callback_list, args.budget)
    print(f"{'shape':<12}" + "".join(f"{n + ' us':>14}" for n in libs) + ("   reaktiv/galvani" if "reaktiv" in libs else ""))
    for shape in results["galvani"]:
        row = f"{shape:<12}" + "".join(f"{results[n][shape] * 1e6:>14.2f}" for n in libs)
        if "reaktiv" in libs:
            row += f"   {results['reaktiv'][shape] / results['galvani'][shape]:>8.1f}x"
        print(row)
    print(f"{'callbacks':<12}{base * 1e6:>14.2f}   (pure-Python list of callbacks: one set -> one call)")
    print(f"set_effect / callbacks: galvani {results['galvani']['set_effect'] / base:.1f}x"
          + (f", reaktiv {results['reaktiv']['set_effect'] / base:.1f}x" if "reaktiv" in libs else ""))


if __name__ == "__main__":
    main()
