// graphs.mjs — cellx, S-bench and the dynamic dependency graphs of
// js-reactivity-benchmark, for any adapter of frameworks.mjs.  Each case is
// `async (fw, ctx) => void`: it sets ctx.ms (the reference's metric for the
// case), reports failures with ctx.fail and may add JSON members to
// ctx.extra.  Counterpart of cases_cellx.c, cases_sbench.c and
// cases_dynamic.c: same sizes, methods, checks.

const nextTick = () => new Promise((resolve) => setTimeout(resolve, 0));
const gc = () => {
  if (globalThis.gc) {
    globalThis.gc();
    globalThis.gc();
  }
};

// Repetitions for the mode: full, quick; smoke runs once.
const reps = (ctx, full, quick) => (ctx.mode === "full" ? full : ctx.mode === "quick" ? quick : 1);

// ---------------------------------------------------------------------------
// cellx: sum over 10 fresh graphs of (read last layer, batch-write the four
// signals, read again).
// ---------------------------------------------------------------------------

function cellxOnce(fw, layers) {
  const run = fw.withBuild(() => {
    const start = {
      p1: fw.signal(1),
      p2: fw.signal(2),
      p3: fw.signal(3),
      p4: fw.signal(4),
    };
    let layer = start;
    for (let i = layers; i > 0; i--) {
      const m = layer;
      const s = {
        p1: fw.computed(() => m.p2.read()),
        p2: fw.computed(() => m.p1.read() - m.p3.read()),
        p3: fw.computed(() => m.p2.read() + m.p4.read()),
        p4: fw.computed(() => m.p3.read()),
      };
      // Block bodies: an effect must not return a value (see kairo.mjs).
      fw.effect(() => {
        s.p1.read();
      });
      fw.effect(() => {
        s.p2.read();
      });
      fw.effect(() => {
        s.p3.read();
      });
      fw.effect(() => {
        s.p4.read();
      });
      layer = s;
    }
    const end = layer;
    return () => {
      const t0 = performance.now();
      const before = [end.p1.read(), end.p2.read(), end.p3.read(), end.p4.read()];
      fw.withBatch(() => {
        start.p1.write(4);
        start.p2.write(3);
        start.p3.write(2);
        start.p4.write(1);
      });
      const after = [end.p1.read(), end.p2.read(), end.p3.read(), end.p4.read()];
      return [performance.now() - t0, before, after];
    };
  });
  const result = run();
  fw.cleanup();
  gc();
  return result;
}

function cellxCase(layers, wantBefore, wantAfter) {
  return async (fw, ctx) => {
    let total = 0;
    const n = reps(ctx, 10, 10);
    for (let r = 0; r < n && ctx.ok; r++) {
      await nextTick();
      const [ms, before, after] = cellxOnce(fw, layers);
      total += ms;
      for (let i = 0; i < 4; i++) {
        if (before[i] !== wantBefore[i])
          ctx.fail(`cellx${layers}: before[${i}] == ${before[i]}, expected ${wantBefore[i]}`);
        if (after[i] !== wantAfter[i])
          ctx.fail(`cellx${layers}: after[${i}] == ${after[i]}, expected ${wantAfter[i]}`);
      }
    }
    ctx.ms = total;
  };
}

// ---------------------------------------------------------------------------
// S-bench
// ---------------------------------------------------------------------------

const COUNT = 1e5;

// Each sub-case builder returns {update, createRuns, updateRuns}: the update
// function and the exact effect run counts it must cause.
let effectRuns = 0;

function sbenchSubcases(fw) {
  // Effects return nothing (the reference's return the sum, which
  // alien-signals >= 3.2 would take for a cleanup function).
  let sink = 0;
  const eff0 = (i) =>
    fw.effect(() => {
      effectRuns++;
      sink = i;
    });
  const eff1 = (s1) =>
    fw.effect(() => {
      effectRuns++;
      sink = s1();
    });
  const eff2 = (s1, s2) =>
    fw.effect(() => {
      effectRuns++;
      sink = s1() + s2();
    });
  const eff4 = (s1, s2, s3, s4) =>
    fw.effect(() => {
      effectRuns++;
      sink = s1() + s2() + s3() + s4();
    });
  const eff1000 = (ss, offset) =>
    fw.effect(() => {
      effectRuns++;
      let sum = 0;
      for (let i = 0; i < 1000; i++) sum += ss[offset + i].read();
      sink = sum;
    });
  const none = (created) => ({ update: () => {}, createRuns: created, updateRuns: 0 });
  const fanout = (n, sources, k) => {
    let created = 0;
    for (let i = 0; i < n / k; i++) {
      const get = sources[i].read;
      for (let j = 0; j < k; j++) eff1(get);
      created += k;
    }
    return none(created);
  };
  // `effects` effects on source 0, then `writes` batched writes of 0..writes-1;
  // the first write (0 over 0) changes nothing.
  const writes = (sources, effects, count) => {
    const set1 = sources[0].write;
    return {
      update: () => {
        for (let i = 0; i < count; i++) fw.withBatch(() => set1(i));
      },
      createRuns: effects,
      updateRuns: effects * Math.max(0, Math.ceil(count) - 1),
    };
  };
  return {
    createSignals: (n, sources) => {
      for (let i = 0; i < n; i++) sources[i] = fw.signal(i);
      return none(0);
    },
    create0to1: (n) => {
      for (let i = 0; i < n; i++) eff0(i);
      return none(n);
    },
    create1to1: (n, s) => {
      for (let i = 0; i < n; i++) eff1(s[i].read);
      return none(n);
    },
    create2to1: (n, s) => {
      for (let i = 0; i < n; i++) eff2(s[i * 2].read, s[i * 2 + 1].read);
      return none(n);
    },
    create4to1: (n, s) => {
      for (let i = 0; i < n; i++) eff4(s[i * 4].read, s[i * 4 + 1].read, s[i * 4 + 2].read, s[i * 4 + 3].read);
      return none(n);
    },
    create1000to1: (n, s) => {
      for (let i = 0; i < n; i++) eff1000(s, i * 1000);
      return none(n);
    },
    create1to2: (n, s) => fanout(n, s, 2),
    create1to4: (n, s) => fanout(n, s, 4),
    create1to8: (n, s) => fanout(n, s, 8),
    create1to1000: (n, s) => fanout(n, s, 1000),
    update1to1: (n, s) => (eff1(s[0].read), writes(s, 1, n)),
    update2to1: (n, s) => (eff2(s[0].read, s[1].read), writes(s, 1, n)),
    update4to1: (n, s) => (eff4(s[0].read, s[1].read, s[2].read, s[3].read), writes(s, 1, n)),
    update1000to1: (n, s) => (eff1000(s, 0), writes(s, 1, n)),
    update1to2: (n, s) => (eff1(s[0].read), eff1(s[0].read), writes(s, 2, n)),
    update1to4: (n, s) => {
      for (let i = 0; i < 4; i++) eff1(s[0].read);
      return writes(s, 4, n);
    },
    update1to1000: (n, s) => {
      for (let i = 0; i < 1000; i++) eff1(s[0].read);
      return writes(s, 1000, n / 10);
    },
  };
}

// One round: sources built and read (untimed), then timed: create, update,
// cleanup.  Returns the time; checks the effect run counts.
function sbenchRound(fw, ctx, name, fn, n, scount) {
  let start = 0;
  let plan = null;
  let runs0 = 0;
  let runs1 = 0;
  const update = fw.withBuild(() => {
    const sources = [];
    for (let i = 0; i < scount; i++) sources[i] = fw.signal(i);
    for (let i = 0; i < scount; i++) {
      sources[i].read();
      sources[i].read();
      sources[i].read();
    }
    start = performance.now();
    runs0 = effectRuns;
    plan = fn(n, sources);
    runs1 = effectRuns;
    return plan.update;
  });
  update();
  const runs2 = effectRuns;
  fw.cleanup();
  const end = performance.now();
  gc();
  if (runs1 - runs0 !== plan.createRuns)
    ctx.fail(`${name}(n=${n}): ${runs1 - runs0} effect runs on creation, expected ${plan.createRuns}`);
  if (runs2 - runs1 !== plan.updateRuns)
    ctx.fail(`${name}(n=${n}): ${runs2 - runs1} effect runs on update, expected ${plan.updateRuns}`);
  return end - start;
}

function sbenchCase(list) {
  return async (fw, ctx) => {
    const subs = sbenchSubcases(fw);
    let total = 0;
    const parts = {};
    for (const [name, n, scount] of list) {
      if (!ctx.ok) break;
      const fn = subs[name];
      let best = Infinity;
      if (ctx.mode === "smoke") {
        best = sbenchRound(fw, ctx, name, fn, n / 100, scount);
      } else {
        gc();
        for (let w = 0; w < 3; w++) sbenchRound(fw, ctx, name, fn, n / 100, scount);
        gc();
        await nextTick();
        const rounds = reps(ctx, 10, 3);
        for (let r = 0; r < rounds; r++) best = Math.min(best, sbenchRound(fw, ctx, name, fn, n, scount));
      }
      parts[name] = Number(best.toFixed(4));
      total += best;
    }
    ctx.ms = total;
    ctx.extra.parts = parts;
  };
}

// ---------------------------------------------------------------------------
// Dynamic dependency graphs (reactively's dependencyGraph.ts + config.ts)
// ---------------------------------------------------------------------------

// The reference's PRNG: sfc32 seeded with four outputs of xmur3a(seed).
function pseudoRandom(seed = "seed") {
  let h = 2166136261 >>> 0;
  for (let i = 0; i < seed.length; i++) {
    let k = Math.imul(seed.charCodeAt(i), 3432918353);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 461845907);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 3864292196) | 0;
  }
  h ^= seed.length;
  const hash = () => {
    h ^= h >>> 16;
    h = Math.imul(h, 2246822507);
    h ^= h >>> 13;
    h = Math.imul(h, 3266489909);
    h ^= h >>> 16;
    return h >>> 0;
  };
  let a = hash();
  let b = hash();
  let c = hash();
  let d = hash();
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

function makeGraph(fw, cfg) {
  const { width, layers, staticFraction, nSources, readFraction } = cfg;
  return fw.withBuild(() => {
    const counter = { count: 0 };
    const sources = new Array(width).fill(0).map((_, i) => fw.signal(i));
    const random = pseudoRandom();
    const rows = [];
    const shapes = []; // per row: static flags, for the direct evaluation
    let prev = sources;
    for (let l = 0; l < layers - 1; l++) {
      const above = prev;
      const flags = [];
      const row = above.map((_, myDex) => {
        const mine = [];
        for (let k = 0; k < nSources; k++) mine.push(above[(myDex + k) % above.length]);
        const isStatic = random() < staticFraction;
        flags.push(isStatic);
        if (isStatic) {
          return fw.computed(() => {
            counter.count++;
            let sum = 0;
            for (const src of mine) sum += src.read();
            return sum;
          });
        }
        const first = mine[0];
        const tail = mine.slice(1);
        return fw.computed(() => {
          counter.count++;
          let sum = first.read();
          const shouldDrop = sum & 0x1;
          const dropDex = sum % tail.length;
          for (let i = 0; i < tail.length; i++) {
            if (shouldDrop && i === dropDex) continue;
            sum += tail[i].read();
          }
          return sum;
        });
      });
      rows.push(row);
      shapes.push(flags);
      prev = row;
    }
    const leaves = rows[rows.length - 1];
    const rand = pseudoRandom();
    const skip = Math.round(leaves.length * (1 - readFraction));
    const readDex = leaves.map((_, i) => i);
    for (let i = 0; i < skip; i++) readDex.splice(Math.floor(rand() * readDex.length), 1);
    const readLeaves = readDex.map((i) => leaves[i]);
    fw.effect(() => {
      for (const leaf of readLeaves) leaf.read();
    });
    return { sources, readLeaves, readDex, shapes, counter };
  });
}

function runGraph(graph, iterations, fw) {
  const { sources, readLeaves } = graph;
  for (let i = 0; i < iterations; i++) {
    fw.withBatch(() => {
      const sourceDex = i % sources.length;
      sources[sourceDex].write(i + sourceDex);
    });
    for (const leaf of readLeaves) leaf.read();
  }
  return readLeaves.reduce((total, leaf) => leaf.read() + total, 0);
}

// The same grid computed without any reactive library, from the signals'
// current values (read outside any computation), summing in the same order.
function directSum(graph, cfg) {
  const { width, nSources } = cfg;
  let prev = graph.sources.map((s) => s.read());
  for (const flags of graph.shapes) {
    prev = flags.map((isStatic, i) => {
      if (isStatic) {
        let sum = 0;
        for (let k = 0; k < nSources; k++) sum += prev[(i + k) % width];
        return sum;
      }
      let sum = prev[i % width];
      const shouldDrop = sum & 0x1;
      const dropDex = sum % (nSources - 1);
      for (let k = 0; k < nSources - 1; k++) {
        if (shouldDrop && k === dropDex) continue;
        sum += prev[(i + 1 + k) % width];
      }
      return sum;
    });
  }
  return graph.readDex.reduce((total, i) => prev[i] + total, 0);
}

function dynamicCase(cfg) {
  return async (fw, ctx) => {
    const smoke = ctx.mode === "smoke";
    const iterations = smoke ? 50 : cfg.iterations;
    const graph = makeGraph(fw, cfg);
    // No warm-up in smoke mode: the single run is then the first, which
    // changes every signal it writes.
    const warm = smoke ? 0 : reps(ctx, 3, 1);
    for (let i = 0; i < warm; i++) {
      runGraph(graph, iterations, fw);
      if (i === 1) await nextTick();
    }
    let best = Infinity;
    let sum = 0;
    const rounds = reps(ctx, 5, 2);
    for (let r = 0; r < rounds; r++) {
      await nextTick();
      graph.counter.count = 0;
      const t0 = performance.now();
      sum = runGraph(graph, iterations, fw);
      best = Math.min(best, performance.now() - t0);
      if (!smoke) {
        if (sum !== cfg.sum) ctx.fail(`${cfg.title}: sum ${sum}, expected ${cfg.sum}`);
        if (graph.counter.count !== cfg.count)
          ctx.fail(`${cfg.title}: count ${graph.counter.count}, expected ${cfg.count}`);
      }
    }
    const direct = directSum(graph, cfg);
    if (sum !== direct) ctx.fail(`${cfg.title}: sum ${sum}, direct evaluation gives ${direct}`);
    ctx.extra.sum = sum;
    ctx.extra.count = graph.counter.count;
    fw.cleanup();
    gc();
    ctx.ms = best;
  };
}

const dynamicConfigs = [
  { title: "2-10x5 - lazy80%", width: 10, layers: 5, nSources: 2, staticFraction: 1, readFraction: 0.2, iterations: 600000, sum: 19199968, count: 3480000 },
  { title: "6-10x10 - dyn25% - lazy80%", width: 10, layers: 10, nSources: 6, staticFraction: 3 / 4, readFraction: 0.2, iterations: 15000, sum: 302310782860, count: 1155000 },
  { title: "4-1000x12 - dyn5%", width: 1000, layers: 12, nSources: 4, staticFraction: 0.95, readFraction: 1, iterations: 7000, sum: 29355933696000, count: 1463000 },
  { title: "25-1000x5", width: 1000, layers: 5, nSources: 25, staticFraction: 1, readFraction: 1, iterations: 3000, sum: 1171484375000, count: 732000 },
  { title: "3-5x500", width: 5, layers: 500, nSources: 3, staticFraction: 1, readFraction: 1, iterations: 500, sum: 3.0239642676898464e241, count: 1246500 },
  { title: "6-100x15 - dyn50%", width: 100, layers: 15, nSources: 6, staticFraction: 0.5, readFraction: 1, iterations: 2000, sum: 15664996402790400, count: 1078000 },
];

export const graphCases = [
  ["cellx1000", "cellx", cellxCase(1000, [-3, -6, -2, 2], [-2, -4, 2, 3])],
  ["cellx2500", "cellx", cellxCase(2500, [-3, -6, -2, 2], [-2, -4, 2, 3])],
  ["cellx5000", "cellx", cellxCase(5000, [2, 4, -1, -6], [-2, 1, -4, -4])],
  ["createSignals", "sbench", sbenchCase([["createSignals", COUNT, COUNT]])],
  [
    "createComputations",
    "sbench",
    sbenchCase([
      ["create0to1", COUNT, 0],
      ["create1to1", COUNT, COUNT],
      ["create2to1", COUNT / 2, COUNT],
      ["create4to1", COUNT / 4, COUNT],
      ["create1000to1", COUNT / 1000, COUNT],
      ["create1to2", COUNT, COUNT / 2],
      ["create1to4", COUNT, COUNT / 4],
      ["create1to8", COUNT, COUNT / 8],
      ["create1to1000", COUNT, COUNT / 1000],
    ]),
  ],
  [
    "updateSignals",
    "sbench",
    sbenchCase([
      ["update1to1", COUNT * 4, 1],
      ["update2to1", COUNT * 2, 2],
      ["update4to1", COUNT, 4],
      ["update1000to1", COUNT / 250, 1000],
      ["update1to2", COUNT, 1],
      ["update1to4", COUNT, 1],
      ["update1to1000", COUNT, 1],
    ]),
  ],
  ...dynamicConfigs.map((cfg) => [cfg.title, "dynamic", dynamicCase(cfg)]),
];
