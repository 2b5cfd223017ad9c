// bench.mjs — the JS side of galvani's signals benchmark.
//
//   node --expose-gc bench.mjs --lib alien|preact [--quick|--smoke]
//        [--filter TEXT] [--case NAME]... [--list]
//
// Runs the cases of milomg/js-reactivity-benchmark (kairo, cellx, S-bench,
// dynamic graphs) on one library and prints one JSON object per line, in the
// format of the C bench (bench/signals/bench_main.c):
//   {"lib":"alien-signals","name":"diamond","group":"kairo","ms":1.2,
//    "ok":true,"allocs_during_propagation":null,"error":null}
// A failed check makes the case's "ok" false (the time is still printed but
// is not a result); the exit status is 1 if any case failed.
// --expose-gc lets the cases collect garbage between runs, as the reference
// does when it is available.

import { frameworks } from "./frameworks.mjs";
import { kairoCases } from "./kairo.mjs";
import { graphCases } from "./graphs.mjs";

const nextTick = () => new Promise((resolve) => setTimeout(resolve, 0));

function usage() {
  return (
    "usage: node --expose-gc bench.mjs --lib alien|preact [--quick|--smoke]\n" +
    "       [--filter TEXT] [--case NAME]... [--list]\n"
  );
}

function parseArgs(argv) {
  const opts = { lib: null, mode: "full", filter: null, cases: [], list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--lib" && i + 1 < argv.length) opts.lib = argv[++i];
    else if (a === "--quick") opts.mode = "quick";
    else if (a === "--smoke") opts.mode = "smoke";
    else if (a === "--filter" && i + 1 < argv.length) opts.filter = argv[++i];
    else if (a === "--case" && i + 1 < argv.length) opts.cases.push(argv[++i]);
    else if (a === "--list") opts.list = true;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(usage());
      process.exit(0);
    } else {
      process.stderr.write(`unknown argument: ${a}\n` + usage());
      process.exit(2);
    }
  }
  return opts;
}

function newCtx(mode) {
  const ctx = {
    mode,
    ms: 0,
    ok: true,
    error: null,
    extra: {},
    fail(msg) {
      if (ctx.ok) {
        ctx.ok = false;
        ctx.error = msg;
      }
    },
  };
  return ctx;
}

// kairo: build, three warm-up iterations, then the fastest of 10 runs of 500
// iterations (3 runs in quick mode; one iteration in smoke mode).
function kairoRunner(build) {
  return async (fw, ctx) => {
    const iter = fw.withBuild(() => build(fw, ctx));
    if (ctx.mode === "smoke") {
      iter();
      const t0 = performance.now();
      iter();
      ctx.ms = performance.now() - t0;
    } else {
      iter();
      iter();
      await nextTick();
      iter();
      await nextTick();
      let best = Infinity;
      const runs = ctx.mode === "quick" ? 3 : 10;
      for (let r = 0; r < runs; r++) {
        await nextTick();
        const t0 = performance.now();
        for (let i = 0; i < 500; i++) iter();
        best = Math.min(best, performance.now() - t0);
      }
      ctx.ms = best;
    }
    fw.cleanup();
    if (globalThis.gc) (globalThis.gc(), globalThis.gc());
  };
}

const allCases = [
  ...kairoCases.map(([name, build]) => [name, "kairo", kairoRunner(build), build]),
  ...graphCases,
];

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    for (const [name, group] of allCases) process.stdout.write(`${group}\t${name}\n`);
    return 0;
  }
  const fw = frameworks[opts.lib];
  if (!fw) {
    process.stderr.write(`--lib must be one of: ${Object.keys(frameworks).join(", ")}\n`);
    return 2;
  }
  for (const name of opts.cases) {
    if (!allCases.some(([n]) => n === name)) {
      process.stderr.write(`unknown case: ${name} (see --list)\n`);
      return 2;
    }
  }
  const selected = allCases.filter(
    ([name]) =>
      (!opts.filter || name.includes(opts.filter)) &&
      (opts.cases.length === 0 || opts.cases.includes(name)),
  );
  if (selected.length === 0) {
    process.stderr.write("no case matched\n");
    return 2;
  }
  process.stdout.write(
    JSON.stringify({ meta: fw.name, mode: opts.mode, node: process.version, gc: !!globalThis.gc }) + "\n",
  );

  // The reference warms every kairo case up (build, three iterations,
  // cleanup) before measuring any of them.
  if (opts.mode !== "smoke") {
    for (const [, group, , build] of selected) {
      if (group !== "kairo") continue;
      const ctx = newCtx(opts.mode);
      const iter = fw.withBuild(() => build(fw, ctx));
      iter();
      iter();
      await nextTick();
      iter();
      fw.cleanup();
    }
    if (globalThis.gc) (globalThis.gc(), globalThis.gc());
    await nextTick();
  }

  let failed = 0;
  for (const [name, group, run] of selected) {
    const ctx = newCtx(opts.mode);
    try {
      await run(fw, ctx);
    } catch (err) {
      ctx.fail(`exception: ${err && err.stack ? err.stack.split("\n")[0] : err}`);
    }
    if (!ctx.ok) failed++;
    const line = {
      lib: fw.name,
      name,
      group,
      ms: Number(ctx.ms.toFixed(4)),
      ok: ctx.ok,
      allocs_during_propagation: null,
      error: ctx.error,
      ...ctx.extra,
    };
    process.stdout.write(JSON.stringify(line) + "\n");
  }
  if (failed) process.stderr.write(`${failed} of ${selected.length} cases FAILED\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
