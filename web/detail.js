/*
 * detail.js — the selected job's panel: its facts, a chart of its progress
 * and one per reported ::metric, a params editor and a tail of its log.
 *
 * Charts are redrawn in the animation frame that carries news of the job,
 * and once a second while it is active (the time axis runs to now).  Opening
 * a job loads its metric history and params changes from galvanid
 * (app.js, loadHistory): every chart shows a mark per params change ("r3"
 * at the time revision 3 was accepted), reloaded when params_revision
 * moves.  Each rule firing (GET /jobs/{id}/events) is a red mark on every
 * chart and a line under the job's facts, reloaded when `events` moves.
 * The log has no stream: it is polled (GET /jobs/{id}/log?tail=...) once a
 * second while the job is active and read once more when it has ended; a
 * poll is skipped while the previous one is still out.
 */
import { ACTIVE, fmtDur, fmtNum, fmtTime, errorText } from './format.js';
import { drawChart } from './chart.js';
import { paramsFromText, paramsToText, paramsPatch } from './forms.js';

const LOG_TAIL = 16384;
const PALETTE = ['#a3e635', '#f472b6', '#facc15', '#2dd4bf', '#fb923c', '#c084fc'];
const $ = (id) => document.getElementById(id);

export function createDetail(ctx) {
  const panel = $('detail');
  const charts = new Map(); /* series name ('' = progress) -> canvas */
  let job = null, logBusy = false, logDone = false, paramsShown = '', paramsEdited = false;

  function chartFor(name) {
    let c = charts.get(name);
    if (!c) {
      c = document.createElement('canvas');
      c.className = 'chart';
      c.dataset.series = name || 'progress';
      $('d-charts').appendChild(c);
      charts.set(name, c);
    }
    return c;
  }

  function drawCharts() {
    if (!job) return;
    const h = ctx.history(job.id);
    const now = ACTIVE.has(job.status) && job.status !== 'queued' ? Date.now() : undefined;
    const empty = { t: [], v: [] };
    const marks = h ? h.marks : [], events = h ? h.events : [];
    drawChart(chartFor(''), h ? h.progress : empty, {
      label: 'progress', unit: '%', color: '#38bdf8', min: 0, max: 100, now, marks, events,
    });
    drawEvents(events);
    if (!h) return;
    let i = 0;
    for (const [name, s] of h.metrics)
      drawChart(chartFor(name), s, { label: name, color: PALETTE[i++ % PALETTE.length], now, marks, events });
  }

  /* One line per firing, newest first: when, the rule and its action, the
   * values that made it true, what the action did. */
  function drawEvents(events) {
    const ul = $('d-events');
    ul.hidden = events.length === 0;
    const key = events.length ? events[events.length - 1].at + events.length : '';
    if (ul.dataset.key === key) return;
    ul.dataset.key = key;
    ul.textContent = '';
    for (const e of events.slice().reverse()) {
      const li = document.createElement('li'), rule = document.createElement('span');
      rule.className = 'ev-rule';
      rule.textContent = `${e.rule} ${e.then}`;
      const vals = Object.entries(e.values || {}).map(([k, v]) => `${k}=${v === null ? 'unknown' : v}`).join(' ');
      li.append(`${fmtTime(e.at)} `, rule, ` ${vals} → ${e.outcome}`);
      ul.appendChild(li);
    }
  }

  /* Fetch the job's history (metrics too when it was just opened); one
   * request at a time, and a newer revision seen meanwhile asks again. */
  let loading = false;
  async function loadHistory(withMetrics) {
    if (!job || loading) return;
    const id = job.id;
    loading = true;
    const known = await ctx.loadHistory(id, withMetrics);
    loading = false;
    if (!job || job.id !== id || !known) return;
    const h = ctx.history(id);
    if (h && (h.marksRev !== job.params_revision || (job.events != null && h.eventsSeen !== job.events)))
      loadHistory(false);
    else requestAnimationFrame(drawCharts);
  }

  function meta(rows) {
    const dl = $('d-meta');
    dl.textContent = '';
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === '') continue;
      const dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = k;
      dd.textContent = v;
      dl.append(dt, dd);
    }
  }

  function render() {
    $('d-title').textContent = `#${job.id} ${job.name || ''}`;
    const badge = $('d-status');
    badge.textContent = job.status;
    badge.dataset.status = job.status;
    const cmd = job.kind === 'demo' ? 'built-in demo job'
      : Array.isArray(job.command) ? JSON.stringify(job.command) : job.command;
    const metrics = Object.entries(job.metrics || {}).map(([k, v]) => `${k}=${fmtNum(Number(v))}`).join('  ');
    meta([
      ['command', cmd + (job.shell ? '  (sh -c)' : '')],
      ['progress', `${fmtNum(job.progress)}%` + (job.total && job.total !== 100 ? ` (${job.current}/${job.total})` : '')],
      ['message', job.message],
      ['metrics', metrics],
      ['rate · ETA', job.status === 'running'
        ? `${Number.isFinite(job.rate) ? fmtNum(job.rate) + ' %/s' : '—'} · ${fmtDur(job.eta)}` : ''],
      ['pipeline', job.pipeline ? `#${job.pipeline.id} step ${job.pipeline.step}` +
        (job.pipeline.generation ? ` (run ${job.pipeline.generation + 1})` : '') : ''],
      ['labels', Object.entries(job.labels || {}).map(([k, v]) => `${k}=${v}`).join('  ')],
      ['rules', (job.rules || []).map((r) => `${r.name}: ${r.then} when ${r.when}`).join('\n')],
      ['pause mode', job.pause_mode],
      ['params rev', job.params_revision ? `${job.params_revision} (applied ${job.params_applied})` : ''],
      ['pid', job.pid],
      ['created', fmtTime(job.created_at)],
      ['started', job.started_at ? fmtTime(job.started_at) : ''],
      ['finished', job.finished_at ? fmtTime(job.finished_at) : ''],
      ['exit', job.signal != null ? 'signal ' + job.signal : job.exit_code],
      ['attempts', job.max_retries ? `${job.attempts} of ${job.max_retries + 1}` : ''],
      ['error', job.error],
    ]);
    /* Refill the editor only when the params changed and the user is not editing. */
    const text = paramsToText(job.params || {});
    const ta = $('params-text');
    if (text !== paramsShown && !paramsEdited && document.activeElement !== ta) {
      ta.value = text;
      paramsShown = text;
    }
    drawCharts();
  }

  async function pollLog() {
    if (!job || logBusy || logDone) return;
    const id = job.id, finished = !ACTIVE.has(job.status);
    logBusy = true;
    const r = await ctx.api('GET', `/jobs/${id}/log?tail=${LOG_TAIL}`);
    logBusy = false;
    if (!job || job.id !== id) return;
    const pre = $('log');
    if (!r.ok) {
      pre.textContent = r.error.code === 'no_log' ? '(' + r.error.message + ')' : errorText(r);
      logDone = r.error.code === 'no_log' || finished;
      return;
    }
    let text = r.text;
    /* a cut at the start of the tail leaves half a line: drop it */
    if (text.length >= LOG_TAIL && text.indexOf('\n') >= 0) text = text.slice(text.indexOf('\n') + 1);
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (pre.textContent !== text) {
      pre.textContent = text || '(no output yet)';
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    $('log-info').textContent = finished ? 'complete' : 'following (1 s)';
    logDone = finished;
  }

  function show(j) {
    job = j || null;
    panel.hidden = !job;
    for (const c of charts.values()) c.remove();
    charts.clear();
    logDone = false;
    paramsShown = '';
    paramsEdited = false;
    $('params-msg').textContent = '';
    $('log').textContent = '';
    $('log-info').textContent = '';
    if (job) {
      render();
      pollLog();
      loadHistory(true);
    }
  }

  /* The job changed (or is gone: undefined). */
  function update(j) {
    if (!j) {
      ctx.select(0);
      return;
    }
    const wasActive = job && ACTIVE.has(job.status);
    const lastRev = job ? job.params_revision : undefined, lastEvents = job ? job.events : undefined;
    job = j;
    if (wasActive && !ACTIVE.has(j.status)) logDone = false; /* one last read */
    render();
    if (j.params_revision !== lastRev || j.events !== lastEvents) loadHistory(false); /* a new mark */
  }

  $('params-text').addEventListener('input', () => { paramsEdited = true; });
  $('params-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const msg = $('params-msg');
    if (!job) return;
    let patch;
    try {
      patch = paramsPatch(job.params || {}, paramsFromText($('params-text').value));
    } catch (err) {
      msg.className = 'msg error';
      msg.textContent = err.message;
      return;
    }
    if (Object.keys(patch).length === 0) {
      msg.className = 'msg';
      msg.textContent = 'nothing changed';
      return;
    }
    const r = await ctx.api('PATCH', `/jobs/${job.id}/params`, patch);
    msg.className = r.ok ? 'msg ok' : 'msg error';
    msg.textContent = r.ok ? 'applied: ' + JSON.stringify(patch) : errorText(r);
    if (r.ok) paramsEdited = false;
  });
  $('d-close').addEventListener('click', () => ctx.select(0));

  setInterval(() => {
    if (!job || panel.hidden) return;
    if (ACTIVE.has(job.status)) requestAnimationFrame(drawCharts);
    pollLog();
  }, 1000);
  addEventListener('resize', () => requestAnimationFrame(drawCharts));

  return { show, update };
}
