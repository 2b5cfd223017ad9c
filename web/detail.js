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
 *
 * The log comes over the page's WebSocket (app.js: {"type":"log","job":ID,
 * "offset":N} asks for it, "log" messages bring the bytes as they are
 * written; docs/api.md "Streams"), never by polling.  The page keeps the
 * newest LOG_KEEP characters and draws them in the animation frame after
 * news: each attempt of a retried job under its own heading (the daemon
 * starts a retry's output with "[galvani: attempt N started ...]"), and
 * protocol lines ("::progress", "::metric", ...) hidden unless the toggle
 * shows them.  After a reconnect the subscription is sent again from the
 * last byte seen (resubscribe), so nothing is lost or repeated.
 */
import { ACTIVE, fmtDur, fmtNum, fmtTime, errorText } from './format.js';
import { drawChart } from './chart.js';
import { paramsFromText, paramsToText, paramsPatch } from './forms.js';

const LOG_KEEP = 262144; /* characters of log text kept, the newest */
const ATTEMPT = /^\[galvani: attempt (\d+) started ([^\]]*)\]$/;
const SKIPPED = '\u0001'; /* starts a line the page inserts where bytes were skipped */
const PALETTE = ['#a3e635', '#f472b6', '#facc15', '#2dd4bf', '#fb923c', '#c084fc'];
const $ = (id) => document.getElementById(id);

export function createDetail(ctx) {
  const panel = $('detail');
  const charts = new Map(); /* series name ('' = progress) -> canvas */
  let job = null, paramsShown = '', paramsEdited = false;
  /* the followed log: bytes up to `next` are in `text` (minus what was cut
   * from its start: `firstAttempt` is the attempt its first line belongs to) */
  let log = { job: 0, next: 0, text: '', cut: false, firstAttempt: 1, dirty: false };

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
      label: 'progress', unit: '%', color: getComputedStyle(panel).getPropertyValue('--chart-progress').trim() || '#38bdf8',
      min: 0, max: 100, now, marks, events,
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

  /* The galvanid node that runs the job: "this node" when it is the one
   * serving the page, another node's address (its log is kept there). */
  function nodeText(j) {
    if (!j.node) return j.status === 'queued' ? 'none yet (queued: the first node with a free slot claims it)' : '';
    const n = ctx.node(j.node);
    if (n.self) return n.cluster ? `${j.node} (this node)` : j.node;
    const where = n.info && n.info.address ? ` · ${n.info.address}` : '';
    const gone = n.info && n.info.state !== 'up' ? ` (${n.info.state})` : '';
    return j.node + gone + where;
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
      ['node', nodeText(job)],
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
      ['at most once', job.at_most_once ? 'yes: if its node is lost, it fails rather than runs again' : ''],
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

  /* ---- the log --------------------------------------------------------------- */

  function followLog() {
    log = { job: job ? job.id : 0, next: 0, text: '', cut: false, firstAttempt: 1, dirty: true };
    if (job && job.kind !== 'demo') ctx.followLog(job.id, 0);
    else ctx.followLog(0);
    scheduleLog();
  }

  /* After a reconnect: the new connection follows from the last byte seen. */
  function resubscribe() {
    if (log.job && job && job.id === log.job && job.kind !== 'demo') ctx.followLog(log.job, log.next);
  }

  /* A "log" message.  Taken if it starts where the page's copy ends (or
   * says how much was skipped from there); a message from an older
   * subscription that overlaps asks again from the last byte seen. */
  function onLog(m) {
    if (!job || m.job !== log.job || m.job !== job.id) return;
    const skipped = m.skipped || 0;
    if (m.offset - skipped !== log.next) {
      if (m.next > log.next) ctx.followLog(log.job, log.next);
      return;
    }
    if (skipped) log.text += (log.text && !log.text.endsWith('\n') ? '\n' : '') + `${SKIPPED}${skipped}\n`;
    log.text += m.data;
    log.next = m.next;
    log.live = true;
    if (log.text.length > LOG_KEEP) {
      /* keep the newest, from a line start; remember which attempt it is in */
      let cut = log.text.indexOf('\n', log.text.length - LOG_KEEP);
      cut = cut < 0 ? log.text.length - LOG_KEEP : cut + 1;
      for (const line of log.text.slice(0, cut).split('\n')) {
        const a = ATTEMPT.exec(line);
        if (a) log.firstAttempt = Number(a[1]);
      }
      log.text = log.text.slice(cut);
      log.cut = true;
    }
    scheduleLog();
  }

  let logFrame = false;
  function scheduleLog() {
    log.dirty = true;
    if (!logFrame) {
      logFrame = true;
      requestAnimationFrame(() => { logFrame = false; if (log.dirty) renderLog(); });
    }
  }

  /* The text as attempts, each a list of [kind, text] runs (kind: out,
   * proto, skipped); protocol lines are counted and left out unless shown. */
  function parseLog(showProto) {
    const attempts = [{ n: log.firstAttempt, at: '', runs: [] }];
    let hidden = 0;
    const lines = log.text.split('\n');
    const add = (runs, kind, text) => {
      const last = runs[runs.length - 1];
      if (last && last[0] === kind) last[1] += text;
      else runs.push([kind, text]);
    };
    lines.forEach((line, i) => {
      const nl = i < lines.length - 1 ? '\n' : '';
      if (!line && !nl) return;
      const a = ATTEMPT.exec(line);
      if (a) attempts.push({ n: Number(a[1]), at: a[2], runs: [] });
      else if (line.startsWith(SKIPPED)) add(attempts[attempts.length - 1].runs, 'skipped', line.slice(1));
      else if (/^\s*::/.test(line)) {
        hidden += !showProto;
        if (showProto) add(attempts[attempts.length - 1].runs, 'proto', line + nl);
      } else add(attempts[attempts.length - 1].runs, 'out', line + nl);
    });
    if (attempts.length > 1 && attempts[0].runs.length === 0 && !log.cut) attempts.shift();
    return { attempts, hidden };
  }

  function renderLog() {
    log.dirty = false;
    const box = $('log');
    if (!job) return;
    const showProto = $('log-protocol').checked;
    const { attempts, hidden } = parseLog(showProto);
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.textContent = '';
    if (job.kind === 'demo') box.textContent = '(the built-in demo job has no log)';
    else if (log.cut) {
      const s = document.createElement('span');
      s.className = 'skipped';
      s.textContent = '(earlier output not shown)';
      box.appendChild(s);
    }
    const many = attempts.length > 1 || attempts[0].n > 1;
    let any = false;
    for (const a of attempts) {
      const div = document.createElement('div');
      div.className = 'attempt';
      div.dataset.attempt = a.n;
      if (many) {
        const h = document.createElement('span');
        h.className = 'attempt-head';
        const at = a.at || (a.n === 1 ? job.started_at : '');
        h.textContent = `attempt ${a.n}` + (at ? ` · started ${fmtTime(at)}` : '');
        div.appendChild(h);
      }
      for (const [kind, text] of a.runs) {
        const s = document.createElement('span');
        s.className = kind;
        s.textContent = kind === 'skipped' ? `(${text} bytes skipped)` : text;
        div.appendChild(s);
        any = true;
      }
      box.appendChild(div);
    }
    if (!any && job.kind !== 'demo') {
      const s = document.createElement('span');
      s.className = 'skipped';
      s.textContent = hidden ? '(only protocol lines so far: "show :: lines" shows them)'
        : log.live ? '(no output yet)' : '(waiting for the stream)';
      box.appendChild(s);
    }
    if (atBottom) box.scrollTop = box.scrollHeight;
    const info = [ACTIVE.has(job.status) ? 'following (live)' : 'complete'];
    if (hidden) info.push(`${hidden} :: line${hidden === 1 ? '' : 's'} hidden`);
    if (many) info.push(`${attempts[attempts.length - 1].n} attempts`);
    $('log-info').textContent = info.join(' · ');
  }

  function show(j) {
    job = j || null;
    panel.hidden = !job;
    for (const c of charts.values()) c.remove();
    charts.clear();
    paramsShown = '';
    paramsEdited = false;
    $('params-msg').textContent = '';
    $('log').textContent = '';
    $('log-info').textContent = '';
    followLog();
    if (job) {
      render();
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
    if (wasActive !== ACTIVE.has(j.status)) scheduleLog(); /* "following" / "complete" */
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
  }, 1000);
  $('log-protocol').addEventListener('change', scheduleLog);
  addEventListener('resize', () => requestAnimationFrame(drawCharts));

  return { show, update, onLog, resubscribe };
}
