// report.mjs — turns the JSON-lines output of the benchmark runs into the
// comparison table and results/latest.json.  Used by bench/run-signals.sh:
//
//   node report.mjs --out results/latest.json --meta machine.json RAW.jsonl...
//
// Every RAW file is the output of one run of one side (galvani's C binary or
// bench.mjs for one JS library).  For each (library, case) the time reported is
// the median over the runs; a case that failed a check in any run is FAIL.

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

const LIBS = [
  ["galvani", "galvani"],
  ["alien-signals", "alien"],
  ["@preact/signals-core", "preact"],
];

function parseArgs(argv) {
  const opts = { out: null, meta: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") opts.out = argv[++i];
    else if (argv[i] === "--meta") opts.meta = argv[++i];
    else opts.files.push(argv[i]);
  }
  return opts;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const opts = parseArgs(process.argv.slice(2));
const byKey = new Map(); // "lib\0case" -> [result lines]
const order = []; // case names in first-seen order
const groups = new Map();
let sizes = null;
const runtimes = {};

for (const file of opts.files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    continue;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue;
    }
    if (r.meta) {
      if (r.meta === "galvani") sizes = r;
      else runtimes[r.meta] = r.node;
      continue;
    }
    const key = `${r.lib}\0${r.name}`;
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(r);
    if (!groups.has(r.name)) {
      groups.set(r.name, r.group);
      order.push(r.name);
    }
  }
}

// Keep the reference's case order: kairo, cellx, sbench, dynamic.
const groupRank = { kairo: 0, cellx: 1, sbench: 2, dynamic: 3 };
order.sort((a, b) => (groupRank[groups.get(a)] ?? 9) - (groupRank[groups.get(b)] ?? 9));

const cases = [];
for (const name of order) {
  const entry = { name, group: groups.get(name) };
  for (const [lib, short] of LIBS) {
    const runs = byKey.get(`${lib}\0${name}`);
    if (!runs) continue;
    const failed = runs.find((r) => !r.ok);
    const allocs = runs.map((r) => r.allocs_during_propagation).filter((a) => a !== null && a !== undefined);
    entry[short] = {
      ms: failed ? null : median(runs.map((r) => r.ms)),
      ok: !failed,
      error: failed ? failed.error : null,
      runs: runs.map((r) => r.ms),
      allocs: allocs.length ? Math.max(...allocs) : null,
    };
    if (runs[0].parts) {
      entry[short].parts = {};
      for (const part of Object.keys(runs[0].parts))
        entry[short].parts[part] = median(runs.map((r) => (r.parts ? r.parts[part] : NaN)));
    }
  }
  const g = entry.galvani;
  const a = entry.alien;
  entry.galvani_over_alien = g && a && g.ok && a.ok && a.ms > 0 ? g.ms / a.ms : null;
  cases.push(entry);
}

// ---------------------------------------------------------------- the table
const fmtMs = (x) => {
  if (!x) return "-";
  if (!x.ok) return "FAIL";
  return x.ms >= 100 ? x.ms.toFixed(1) : x.ms >= 10 ? x.ms.toFixed(2) : x.ms.toFixed(3);
};
const header = ["case", "galvani ms", "alien ms", "preact ms", "galvani/alien", "allocs"];
const rows = cases.map((c) => [
  c.name,
  fmtMs(c.galvani),
  fmtMs(c.alien),
  fmtMs(c.preact),
  c.galvani_over_alien === null ? "-" : c.galvani_over_alien.toFixed(2),
  c.galvani && c.galvani.allocs !== null ? String(c.galvani.allocs) : "-",
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmtRow = (r) => "| " + r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(" | ") + " |";
console.log(fmtRow(header));
console.log("|" + widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|");
for (const r of rows) console.log(fmtRow(r));

const failures = [];
for (const c of cases)
  for (const [, short] of LIBS)
    if (c[short] && !c[short].ok) failures.push(`${short} ${c.name}: ${c[short].error}`);
if (failures.length) {
  console.log("\nFAILED checks:");
  for (const f of failures) console.log("  " + f);
}
const slow = cases.filter((c) => c.galvani_over_alien !== null && c.galvani_over_alien > 3);
if (slow.length) console.log(`\ngalvani more than 3x slower than alien-signals: ${slow.map((c) => c.name).join(", ")}`);
if (sizes)
  console.log(
    `\ngalvani node sizes (bytes): signal ${sizes.bytes_signal}, computed ${sizes.bytes_computed}, ` +
      `effect ${sizes.bytes_effect}, link ${sizes.bytes_link}`,
  );

// ------------------------------------------------------------- latest.json
if (opts.out) {
  let machine = {};
  if (opts.meta) {
    try {
      machine = JSON.parse(readFileSync(opts.meta, "utf8"));
    } catch {
      machine = {};
    }
  }
  const doc = {
    generated: new Date().toISOString(),
    machine,
    node: runtimes,
    galvani_sizes: sizes
      ? {
          signal: sizes.bytes_signal,
          computed: sizes.bytes_computed,
          effect: sizes.bytes_effect,
          link: sizes.bytes_link,
        }
      : null,
    notes:
      "ms = median over runs of the reference metric (kairo: fastest of 10 runs of 500 iterations; " +
      "cellx: sum of 10 graphs; sbench: sum of the sub-cases' fastest rounds; dynamic: fastest of 5). " +
      "allocs = heap allocations by galvani during the last timed run (max over runs).",
    cases,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(doc, null, 2) + "\n");
  console.log(`\nwritten: ${opts.out}`);
}
process.exit(failures.length ? 1 : 0);
