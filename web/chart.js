/*
 * chart.js — a small line chart on a <canvas>: one series over time, with
 * y and time axes, a grid, the latest value and a dot on the newest point.
 *
 * Drawn from scratch (no library): a few dozen canvas calls per redraw, so
 * the selected job's charts can be redrawn every animation frame that has
 * news.  While the job is still active the time axis runs to `now` and the
 * last value is carried forward as a dashed line (a paused job's flat
 * progress is visible as such).  Rule firings are solid red marks named
 * after the rule.  Params changes are drawn as marks: a
 * dotted vertical line at the time of the change, labelled with its
 * revision ("r3").  Colours come from the page's theme (custom properties
 * read from the canvas's computed style).
 */
import { fmtDur, fmtNum } from './format.js';

/* A "nice" step (1, 2 or 5 times a power of ten) near range/n. */
function niceStep(range, n) {
  const raw = range / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/*
 * series: { t: [ms], v: [number] } (same length, t ascending)
 * o: { label, color, min, max (fixed y range, optional), now (ms, optional: extend to it),
 *      marks: [{ t (ms), rev }] (optional: params changes),
 *      events: [{ t (ms), rule, then }] (optional: rule firings) }
 */
export function drawChart(canvas, series, o) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  /* the theme's colours (app.css: dark, or light by prefers-color-scheme) */
  const css = getComputedStyle(canvas);
  const col = (name, dflt) => css.getPropertyValue(name).trim() || dflt;
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'middle';
  const n = series.t.length;
  canvas.dataset.points = n;
  canvas.dataset.marks = '';
  canvas.dataset.events = '';

  /* title left, latest value right */
  g.fillStyle = col('--chart-label', '#8b98ab');
  g.textAlign = 'left';
  g.fillText(o.label, 8, 10);
  if (n) {
    g.fillStyle = o.color;
    g.textAlign = 'right';
    g.font = 'bold 12px system-ui, sans-serif';
    g.fillText(fmtNum(series.v[n - 1]) + (o.unit || ''), w - 8, 10);
    g.font = '11px system-ui, sans-serif';
  } else {
    g.fillStyle = col('--chart-empty', '#5c687a');
    g.textAlign = 'center';
    g.fillText('no data yet', w / 2, h / 2);
    return;
  }

  const L = 42, R = 10, T = 22, B = 18;
  const pw = w - L - R, ph = h - T - B;
  /* the axis starts at the first point, or earlier at a rule firing the page
   * loaded from galvanid (a reload: the page's own points start now) */
  const t0 = Math.min(series.t[0], ...(o.events || []).map((e) => e.t).filter(Number.isFinite));
  const t1 = Math.max(o.now || 0, series.t[n - 1], t0 + 1000);
  let lo = o.min, hi = o.max;
  if (lo === undefined || hi === undefined) {
    lo = Math.min(...series.v);
    hi = Math.max(...series.v);
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.abs(hi) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * pw;
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * ph;

  /* grid and axes */
  g.strokeStyle = col('--chart-grid', '#232c3b');
  g.lineWidth = 1;
  g.fillStyle = col('--chart-tick', '#6b778a');
  g.textAlign = 'right';
  const ys = niceStep(hi - lo, 3);
  for (let v = Math.ceil(lo / ys) * ys; v <= hi + ys * 1e-9; v += ys) {
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
    g.fillText(fmtNum(Math.abs(v) < ys * 1e-9 ? 0 : v), L - 5, yy);
  }
  g.textAlign = 'center';
  const span = (t1 - t0) / 1000;
  const xs = niceStep(span, 4);
  for (let s = 0; s <= span + 1e-9; s += xs) {
    const xx = Math.round(x(t0 + s * 1000)) + 0.5;
    g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
    g.fillText(fmtDur(s), Math.min(Math.max(xx, L + 8), L + pw - 8), h - 8);
  }
  g.strokeStyle = col('--chart-axis', '#3a4558');
  g.beginPath(); g.moveTo(L + 0.5, T); g.lineTo(L + 0.5, T + ph); g.lineTo(L + pw, T + ph + 0.5); g.stroke();

  /* params changes, under the series; the revisions drawn are listed in
   * data-marks (the browser test reads them) */
  const drawn = [];
  g.strokeStyle = g.fillStyle = col('--chart-mark', '#e2e8f0');
  g.lineWidth = 1;
  g.setLineDash([2, 3]);
  g.textAlign = 'left';
  for (const m of o.marks || []) {
    if (!(m.t >= t0 && m.t <= t1)) continue;
    const mx = Math.round(x(m.t)) + 0.5;
    g.beginPath(); g.moveTo(mx, T); g.lineTo(mx, T + ph); g.stroke();
    g.fillText('r' + m.rev, Math.min(mx + 3, L + pw - 16), T + 8);
    drawn.push(m.rev);
  }
  g.setLineDash([]);
  canvas.dataset.marks = drawn.join(',');

  /* rule firings, solid red, labelled with the rule; listed in data-events */
  const fired = [];
  g.strokeStyle = g.fillStyle = col('--event', '#f87171');
  for (const e of o.events || []) {
    if (!(e.t >= t0 && e.t <= t1)) continue;
    const ex = Math.round(x(e.t)) + 0.5;
    g.beginPath(); g.moveTo(ex, T); g.lineTo(ex, T + ph); g.stroke();
    g.fillText(e.rule + ' ' + e.then, Math.min(ex + 3, L + pw - 60), T + ph - 4);
    fired.push(e.rule);
  }
  canvas.dataset.events = fired.join(',');

  /* the series: steps would suggest more than we know; straight segments */
  g.strokeStyle = o.color;
  g.lineWidth = 1.8;
  g.lineJoin = 'round';
  g.beginPath();
  for (let i = 0; i < n; i++) {
    const px = x(series.t[i]), py = y(series.v[i]);
    if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
  }
  g.stroke();
  const lx = x(series.t[n - 1]), ly = y(series.v[n - 1]);
  if (o.now && o.now > series.t[n - 1]) {
    g.setLineDash([3, 3]);
    g.lineWidth = 1;
    g.beginPath(); g.moveTo(lx, ly); g.lineTo(x(o.now), ly); g.stroke();
    g.setLineDash([]);
  }
  g.fillStyle = o.color;
  g.beginPath(); g.arc(lx, ly, 3, 0, 2 * Math.PI); g.fill();
}
