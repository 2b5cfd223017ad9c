// frameworks.mjs — the two JS libraries galvani is compared with, behind the
// six-call adapter the reference suite (milomg/js-reactivity-benchmark) uses:
//   signal(v) -> {read, write}, computed(fn) -> {read}, effect(fn),
//   withBatch(fn), withBuild(fn) -> fn's result, cleanup().
// Each adapter does what the reference's adapter for that library does, so
// the numbers are comparable with the published ones.

import * as alien from "alien-signals";
import * as preact from "@preact/signals-core";

// alien-signals: effects created while building belong to an effectScope;
// cleanup() disposes the scope.
let alienScope = null;
export const alienFramework = {
  name: "alien-signals",
  signal(initial) {
    const s = alien.signal(initial);
    return { read: () => s(), write: (v) => s(v) };
  },
  computed(fn) {
    const c = alien.computed(fn);
    return { read: () => c() };
  },
  effect(fn) {
    alien.effect(fn);
  },
  withBatch(fn) {
    // No try/finally, like the reference adapter: a throwing case fails the
    // whole run anyway.
    alien.startBatch();
    fn();
    alien.endBatch();
  },
  withBuild(fn) {
    let out;
    alienScope = alien.effectScope(() => {
      out = fn();
    });
    return out;
  },
  cleanup() {
    if (alienScope) alienScope();
    alienScope = null;
  },
};

// @preact/signals-core: effects return their disposer; cleanup() calls them
// all.
let preactDisposers = [];
export const preactFramework = {
  name: "@preact/signals-core",
  signal(initial) {
    const s = preact.signal(initial);
    return {
      read: () => s.value,
      write: (v) => {
        s.value = v;
      },
    };
  },
  computed(fn) {
    const c = preact.computed(fn);
    return { read: () => c.value };
  },
  effect(fn) {
    preactDisposers.push(preact.effect(fn));
  },
  withBatch(fn) {
    preact.batch(fn);
  },
  withBuild(fn) {
    return fn();
  },
  cleanup() {
    for (const dispose of preactDisposers) dispose();
    preactDisposers = [];
  },
};

export const frameworks = {
  alien: alienFramework,
  preact: preactFramework,
};
