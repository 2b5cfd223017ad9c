// kairo.mjs — the kairo cases of js-reactivity-benchmark (and molBench), for
// any adapter of frameworks.mjs.  Each builder takes (fw, ctx), builds its
// graph and returns `iter`, one iteration with its checks; bench.mjs times
// 500 iterations, fastest of 10 runs.  The checks are the reference's
// console.asserts, turned into failures (ctx.fail); molBench gets the two
// checks the C port adds (G == 1604, four effect runs per iteration).
//
// Effect functions here never return a value, unlike some in the reference:
// since alien-signals 3.2 an effect's return value is its cleanup function,
// and returning a number makes it throw "cleanup is not a function".

// A 100-step loop; V8 does run it (measured: ~70 ns a call), and so does the
// C port (bench_busy).
function busy() {
  let a = 0;
  for (let i = 0; i < 100; i++) {
    a++;
  }
}

export function avoidablePropagation(fw, ctx) {
  const head = fw.signal(0);
  const c1 = fw.computed(() => head.read());
  const c2 = fw.computed(() => (c1.read(), 0));
  const c3 = fw.computed(() => (busy(), c2.read() + 1));
  const c4 = fw.computed(() => c3.read() + 2);
  const c5 = fw.computed(() => c4.read() + 3);
  fw.effect(() => {
    c5.read();
    busy();
  });
  return () => {
    fw.withBatch(() => head.write(1));
    if (c5.read() !== 6) ctx.fail(`avoidable: c5 == ${c5.read()}, expected 6`);
    for (let i = 0; i < 1000; i++) {
      fw.withBatch(() => head.write(i));
      if (c5.read() !== 6) ctx.fail(`avoidable: c5 == ${c5.read()} after write ${i}, expected 6`);
    }
  };
}

export function broadPropagation(fw, ctx) {
  const head = fw.signal(0);
  let last = head;
  let runs = 0;
  for (let i = 0; i < 50; i++) {
    const cur = fw.computed(() => head.read() + i);
    const cur2 = fw.computed(() => cur.read() + 1);
    fw.effect(() => {
      cur2.read();
      runs++;
    });
    last = cur2;
  }
  return () => {
    fw.withBatch(() => head.write(1));
    runs = 0;
    for (let i = 0; i < 50; i++) {
      fw.withBatch(() => head.write(i));
      const v = last.read();
      if (v !== i + 50) ctx.fail(`broad: last == ${v}, expected ${i + 50}`);
    }
    if (runs !== 2500) ctx.fail(`broad: ${runs} effect runs, expected 2500`);
  };
}

export function deepPropagation(fw, ctx) {
  const len = 50;
  const head = fw.signal(0);
  let current = head;
  for (let i = 0; i < len; i++) {
    const c = current;
    current = fw.computed(() => c.read() + 1);
  }
  const end = current;
  let runs = 0;
  fw.effect(() => {
    end.read();
    runs++;
  });
  return () => {
    fw.withBatch(() => head.write(1));
    runs = 0;
    for (let i = 0; i < 50; i++) {
      fw.withBatch(() => head.write(i));
      const v = end.read();
      if (v !== len + i) ctx.fail(`deep: end == ${v}, expected ${len + i}`);
    }
    if (runs !== 50) ctx.fail(`deep: ${runs} effect runs, expected 50`);
  };
}

export function diamond(fw, ctx) {
  const width = 5;
  const head = fw.signal(0);
  const branches = [];
  for (let i = 0; i < width; i++) branches.push(fw.computed(() => head.read() + 1));
  const sum = fw.computed(() => branches.map((x) => x.read()).reduce((a, b) => a + b, 0));
  let runs = 0;
  fw.effect(() => {
    sum.read();
    runs++;
  });
  return () => {
    fw.withBatch(() => head.write(1));
    if (sum.read() !== 2 * width) ctx.fail(`diamond: sum == ${sum.read()}, expected ${2 * width}`);
    runs = 0;
    for (let i = 0; i < 500; i++) {
      fw.withBatch(() => head.write(i));
      const v = sum.read();
      if (v !== (i + 1) * width) ctx.fail(`diamond: sum == ${v}, expected ${(i + 1) * width}`);
    }
    if (runs !== 500) ctx.fail(`diamond: ${runs} effect runs, expected 500`);
  };
}

export function mux(fw, ctx) {
  const heads = new Array(100).fill(null).map(() => fw.signal(0));
  const m = fw.computed(() => Object.fromEntries(heads.map((h) => h.read()).entries()));
  const split = heads
    .map((_, index) => fw.computed(() => m.read()[index]))
    .map((x) => fw.computed(() => x.read() + 1));
  split.forEach((x) =>
    fw.effect(() => {
      x.read();
    }),
  );
  return () => {
    for (let i = 0; i < 10; i++) {
      fw.withBatch(() => heads[i].write(i));
      const v = split[i].read();
      if (v !== i + 1) ctx.fail(`mux: split[${i}] == ${v}, expected ${i + 1}`);
    }
    for (let i = 0; i < 10; i++) {
      fw.withBatch(() => heads[i].write(i * 2));
      const v = split[i].read();
      if (v !== i * 2 + 1) ctx.fail(`mux: split[${i}] == ${v}, expected ${i * 2 + 1}`);
    }
  };
}

export function repeatedObservers(fw, ctx) {
  const size = 30;
  const head = fw.signal(0);
  const current = fw.computed(() => {
    let result = 0;
    for (let i = 0; i < size; i++) result += head.read();
    return result;
  });
  let runs = 0;
  fw.effect(() => {
    current.read();
    runs++;
  });
  return () => {
    fw.withBatch(() => head.write(1));
    if (current.read() !== size) ctx.fail(`repeatedObservers: ${current.read()}, expected ${size}`);
    runs = 0;
    for (let i = 0; i < 100; i++) {
      fw.withBatch(() => head.write(i));
      const v = current.read();
      if (v !== i * size) ctx.fail(`repeatedObservers: ${v}, expected ${i * size}`);
    }
    if (runs !== 100) ctx.fail(`repeatedObservers: ${runs} effect runs, expected 100`);
  };
}

export function triangle(fw, ctx) {
  const width = 10;
  const head = fw.signal(0);
  let current = head;
  const list = [];
  for (let i = 0; i < width; i++) {
    const c = current;
    list.push(current);
    current = fw.computed(() => c.read() + 1);
  }
  const sum = fw.computed(() => list.map((x) => x.read()).reduce((a, b) => a + b, 0));
  let runs = 0;
  fw.effect(() => {
    sum.read();
    runs++;
  });
  const constant = (width * (width + 1)) / 2;
  return () => {
    fw.withBatch(() => head.write(1));
    if (sum.read() !== constant) ctx.fail(`triangle: sum == ${sum.read()}, expected ${constant}`);
    runs = 0;
    for (let i = 0; i < 100; i++) {
      fw.withBatch(() => head.write(i));
      const v = sum.read();
      const want = constant - width + i * width;
      if (v !== want) ctx.fail(`triangle: sum == ${v}, expected ${want}`);
    }
    if (runs !== 100) ctx.fail(`triangle: ${runs} effect runs, expected 100`);
  };
}

export function unstable(fw, ctx) {
  const head = fw.signal(0);
  const double = fw.computed(() => head.read() * 2);
  const inverse = fw.computed(() => -head.read());
  const current = fw.computed(() => {
    let result = 0;
    for (let i = 0; i < 20; i++) result += head.read() % 2 ? double.read() : inverse.read();
    return result;
  });
  let runs = 0;
  fw.effect(() => {
    current.read();
    runs++;
  });
  return () => {
    fw.withBatch(() => head.write(1));
    if (current.read() !== 40) ctx.fail(`unstable: ${current.read()}, expected 40`);
    runs = 0;
    for (let i = 0; i < 100; i++) fw.withBatch(() => head.write(i));
    if (runs !== 100) ctx.fail(`unstable: ${runs} effect runs, expected 100`);
  };
}

function fib(n) {
  return n < 2 ? 1 : fib(n - 1) + fib(n - 2);
}

function hard(n) {
  return n + fib(16);
}

const molNumbers = Array.from({ length: 5 }, (_, i) => i);

export function molBench(fw, ctx) {
  const res = [];
  const A = fw.signal(0);
  const B = fw.signal(0);
  const C = fw.computed(() => (A.read() % 2) + (B.read() % 2));
  const D = fw.computed(() => molNumbers.map((i) => ({ x: i + (A.read() % 2) - (B.read() % 2) })));
  const E = fw.computed(() => hard(C.read() + A.read() + D.read()[0].x));
  const F = fw.computed(() => hard(D.read()[2].x || B.read()));
  const G = fw.computed(() => C.read() + (C.read() || E.read() % 2) + D.read()[4].x + F.read());
  fw.effect(() => {
    res.push(hard(G.read()));
  });
  fw.effect(() => {
    res.push(G.read());
  });
  fw.effect(() => {
    res.push(hard(F.read()));
  });
  let i = 0;
  return () => {
    i++;
    res.length = 0;
    fw.withBatch(() => {
      B.write(1);
      A.write(1 + i * 2);
    });
    fw.withBatch(() => {
      A.write(2 + i * 2);
      B.write(2);
    });
    if (G.read() !== 1604) ctx.fail(`molBench: G == ${G.read()}, expected 1604`);
    if (res.length !== 4) ctx.fail(`molBench: ${res.length} effect runs, expected 4`);
  };
}

export const kairoCases = [
  ["avoidablePropagation", avoidablePropagation],
  ["broadPropagation", broadPropagation],
  ["deepPropagation", deepPropagation],
  ["diamond", diamond],
  ["mux", mux],
  ["repeatedObservers", repeatedObservers],
  ["triangle", triangle],
  ["unstable", unstable],
  ["molBench", molBench],
];
