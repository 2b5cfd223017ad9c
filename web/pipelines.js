/*
 * pipelines.js — the pipelines: a list (name, status, progress) and the
 * selected pipeline's graph, its actions and its rule firings.
 *
 * Like the jobs, pipelines come only from the stream (app.js): the snapshot's
 * "pipelines", then a "pipeline" message (the whole pipeline, replace by id)
 * whenever any of its steps' status or progress moved, and
 * "pipeline_removed".  Buttons call the API (POST /pipelines/{id}/pause, ...,
 * /steps/{name}/retry) and change nothing here: the result comes back over
 * the stream.
 *
 * The graph is SVG: each step a box in the column of its depth (the longest
 * path from a step that needs nothing), ordered in its column by where the
 * steps it needs are (so edges cross less), with a curve from each need to
 * the step.  The boxes and edges are built once per pipeline shape (steps
 * and needs never change); a message only rewrites what changed in them
 * (status, progress text and bar, the retry button), in the animation frame
 * app.js batches.  A box is a button that opens its job in the job panel;
 * a failed or cancelled step also has a Retry button.  Selecting a pipeline
 * sets the address to #/pipelines/ID (app.js: a link to it, back/forward).
 * The rule firings
 * (GET /pipelines/{id}/events) are fetched when the pipeline is selected
 * and again whenever its "events" count moves.
 */
import { errorText, fmtNum, fmtTime } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const BOX_W = 172, BOX_H = 56, COL_GAP = 56, ROW_GAP = 14, PAD = 6;
const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const RETRYABLE = new Set(['failed', 'cancelled']);

/* What can be done to a pipeline (the daemon decides; this only avoids
 * offering what it would refuse with 409). */
const ACTIONS = [
  ['pause', 'Pause', (p) => !FINISHED.has(p.status) && !p.paused],
  ['resume', 'Resume', (p) => !FINISHED.has(p.status) && p.paused],
  ['cancel', 'Cancel', (p) => !FINISHED.has(p.status)],
  ['delete', 'Delete', (p) => FINISHED.has(p.status)],
];

const $ = (id) => document.getElementById(id);

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

const clamp = (p) => Math.max(0, Math.min(100, Number(p) || 0));
const short = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/* Columns and rows of the steps: col = longest path from a root (a step
 * that needs nothing); in a column, by the mean row of the steps it needs,
 * then in definition order.  A cycle (which the daemon refuses) would only
 * put a step in column 0.  Returns Map name -> { col, row, i }, and the
 * number of columns and of rows in the fullest column. */
export function layout(steps) {
  const index = new Map(steps.map((s, i) => [s.name, i]));
  const col = new Array(steps.length).fill(-1);
  const visiting = new Set();
  const depth = (i) => {
    if (col[i] >= 0) return col[i];
    if (visiting.has(i)) return 0;
    visiting.add(i);
    let d = 0;
    for (const n of steps[i].needs || []) {
      const j = index.get(n);
      if (j !== undefined) d = Math.max(d, depth(j) + 1);
    }
    visiting.delete(i);
    col[i] = d;
    return d;
  };
  steps.forEach((_, i) => depth(i));
  const ncols = steps.length ? Math.max(...col) + 1 : 0;
  const pos = new Map();
  let nrows = 0;
  for (let c = 0; c < ncols; c++) {
    const here = steps.map((s, i) => ({ s, i })).filter(({ i }) => col[i] === c);
    const key = ({ s, i }) => {
      const rows = (s.needs || []).map((n) => pos.get(n)).filter(Boolean).map((p) => p.row);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : i;
    };
    here.sort((a, b) => key(a) - key(b) || a.i - b.i);
    here.forEach(({ s, i }, row) => pos.set(s.name, { col: c, row, i, rows: here.length }));
    nrows = Math.max(nrows, here.length);
  }
  return { pos, ncols, nrows };
}

export function createPipelines(ctx) {
  const section = $('pipelines');
  const list = $('pl-list');
  const items = new Map(); /* id -> { li, button, last, ... } */
  const pipelines = new Map(); /* id -> the latest pipeline */
  let selected = 0;
  let graph = null; /* the selected pipeline's drawing: { id, shape, steps: Map name -> box, edges, last } */
  let events = { id: 0, seen: -1, loading: false, list: [] };

  /* ---- the list ------------------------------------------------------------------ */

  /* Write `value` (a property, or an attribute when prop is 'aria-label')
   * only when it changed since the last write. */
  function set(last, key, el, prop, value) {
    if (last[key] !== value) {
      last[key] = value;
      if (prop === 'aria-label') el.setAttribute(prop, value);
      else el[prop] = value;
    }
  }

  function build(pl) {
    const li = document.createElement('li');
    li.dataset.id = pl.id;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'pl-item';
    b.setAttribute('aria-pressed', 'false');
    b.innerHTML = '<span class="pl-iname"></span><span class="badge"></span>' +
      '<span class="bar"><i></i><span></span></span><small class="pl-isteps"></small>';
    li.appendChild(b);
    const r = { li, b, last: {}, name: b.children[0], badge: b.children[1], fill: b.children[2].children[0],
                pct: b.children[2].children[1], steps: b.children[3] };
    items.set(pl.id, r);
    let before = list.firstChild; /* newest first */
    while (before && Number(before.dataset.id) > pl.id) before = before.nextSibling;
    list.insertBefore(li, before);
    return r;
  }

  function updateItem(pl) {
    const r = items.get(pl.id) || build(pl);
    if (r.last.status !== pl.status) {
      r.last.status = pl.status;
      r.li.dataset.status = pl.status;
      r.badge.textContent = pl.status;
    }
    const p = clamp(pl.progress);
    if (r.last.p !== p) {
      r.last.p = p;
      r.fill.style.transform = `scaleX(${p / 100})`;
      r.li.dataset.progress = p;
      r.pct.textContent = fmtNum(p) + '%';
    }
    set(r.last, 'name', r.name, 'textContent', `#${pl.id} ${pl.name}`);
    const done = pl.steps.filter((s) => s.status === 'succeeded').length;
    set(r.last, 'steps', r.steps, 'textContent', `${done}/${pl.steps.length} steps`);
    set(r.last, 'label', r.b, 'aria-label', `pipeline ${pl.name}: ${pl.status}, ${fmtNum(p)}%, ` +
        `${done} of ${pl.steps.length} steps succeeded`);
  }

  /* ---- the graph --------------------------------------------------------------------- */

  const shapeOf = (pl) => JSON.stringify(pl.steps.map((s) => [s.name, s.needs]));

  function drawGraph(pl) {
    const host = $('pl-graph');
    host.textContent = '';
    const { pos, ncols, nrows } = layout(pl.steps);
    const width = PAD * 2 + ncols * BOX_W + Math.max(0, ncols - 1) * COL_GAP;
    const height = PAD * 2 + nrows * BOX_H + Math.max(0, nrows - 1) * ROW_GAP;
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group',
                              'aria-label': `steps of pipeline ${pl.name}` }, host);
    const defs = svg('defs', {}, root);
    const marker = svg('marker', { id: 'pl-arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7,
                                   markerHeight: 7, orient: 'auto' }, defs);
    svg('path', { d: 'M0,0 L8,4 L0,8 z', class: 'pl-arrowhead' }, marker);
    const at = (name) => {
      const p = pos.get(name);
      const offset = (nrows - p.rows) * (BOX_H + ROW_GAP) / 2; /* a short column is centred */
      return { x: PAD + p.col * (BOX_W + COL_GAP), y: PAD + offset + p.row * (BOX_H + ROW_GAP) };
    };
    const g = { id: pl.id, shape: shapeOf(pl), steps: new Map(), edges: [] };
    const edgeLayer = svg('g', { class: 'pl-edges' }, root);
    for (const s of pl.steps) {
      for (const n of s.needs || []) {
        if (!pos.has(n)) continue;
        const a = at(n), b = at(s.name);
        const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x - 1, y2 = b.y + BOX_H / 2, dx = COL_GAP / 2;
        const path = svg('path', { class: 'pl-edge', d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
                                   'marker-end': 'url(#pl-arrow)', 'data-from': n, 'data-to': s.name }, edgeLayer);
        g.edges.push({ path, from: n, last: '' });
      }
    }
    for (const s of pl.steps) {
      const p = pos.get(s.name), { x, y } = at(s.name);
      const box = svg('g', { class: 'pl-step', transform: `translate(${x},${y})`, 'data-step': s.name,
                             'data-col': p.col, 'data-row': p.row }, root);
      const open = svg('g', { class: 'pl-open', role: 'button', tabindex: '0' }, box);
      svg('title', {}, open).textContent = s.name;
      svg('rect', { class: 'pl-box', width: BOX_W, height: BOX_H, rx: 7 }, open);
      svg('text', { class: 'pl-name', x: 10, y: 19 }, open).textContent = short(s.name, 17);
      const status = svg('text', { class: 'pl-stext', x: 10, y: 36 }, open);
      svg('rect', { class: 'pl-track', x: 10, y: 43, width: BOX_W - 20, height: 6, rx: 3 }, open);
      const fill = svg('rect', { class: 'pl-fill', x: 10, y: 43, width: 0, height: 6, rx: 3 }, open);
      const retry = svg('g', { class: 'pl-retry', role: 'button', tabindex: '0', transform: `translate(${BOX_W - 58},6)`,
                               'aria-label': `Retry step ${s.name}` }, box);
      svg('rect', { width: 52, height: 18, rx: 4 }, retry);
      svg('text', { x: 26, y: 13 }, retry).textContent = '↻ Retry';
      retry.style.display = 'none';
      g.steps.set(s.name, { box, open, status, fill, retry, last: {} });
    }
    graph = g;
  }

  function updateGraph(pl) {
    if (!graph || graph.id !== pl.id || graph.shape !== shapeOf(pl)) drawGraph(pl);
    const byName = new Map(pl.steps.map((s) => [s.name, s]));
    for (const s of pl.steps) {
      const r = graph.steps.get(s.name);
      const p = clamp(s.progress);
      if (r.last.status !== s.status) {
        r.last.status = s.status;
        r.box.dataset.status = s.status;
        r.retry.style.display = RETRYABLE.has(s.status) ? '' : 'none';
      }
      if (r.last.p !== p) {
        r.last.p = p;
        r.box.dataset.progress = p;
        r.fill.setAttribute('width', String((BOX_W - 20) * p / 100));
      }
      const job = s.job ?? (s.jobs && s.jobs.length ? s.jobs[s.jobs.length - 1] : null);
      r.job = job;
      const text = s.status + (s.status === 'waiting' || s.status === 'skipped' ? '' : ` · ${fmtNum(p)}%`) +
        (job ? `  #${job}` : '');
      set(r.last, 'text', r.status, 'textContent', text);
      set(r.last, 'label', r.open, 'aria-label', `step ${s.name}: ${s.status}, ${fmtNum(p)}%` +
          (s.needs && s.needs.length ? `, needs ${s.needs.join(', ')}` : '') +
          (job ? `; open job #${job}` : '; no job yet'));
      r.box.classList.toggle('selected', job != null && job === ctx.state.selected);
    }
    for (const e of graph.edges) {
      const from = byName.get(e.from);
      const st = from ? from.status : '';
      if (e.last !== st) {
        e.last = st;
        e.path.dataset.status = st;
      }
    }
  }

  /* ---- the selected pipeline --------------------------------------------------------- */

  /* The selected pipeline's head (what was last written is kept in
   * `shown`, emptied when another pipeline is selected), then its graph. */
  let shown = {};
  function renderDetail(pl) {
    const d = $('pl-detail');
    if (shown.id !== pl.id) {
      shown = { id: pl.id };
      d.hidden = false;
      d.dataset.id = pl.id;
    }
    const state = pl.status + (pl.paused ? ' paused' : '');
    if (shown.state !== state) {
      shown.state = state;
      d.dataset.status = pl.status;
      const badge = $('pl-status');
      badge.textContent = pl.status + (pl.paused && pl.status !== 'paused' ? ' (paused)' : '');
      badge.dataset.status = pl.status;
      for (const b of $('pl-actions').querySelectorAll('button[data-act]'))
        b.hidden = !ACTIONS.find(([act]) => act === b.dataset.act)[2](pl);
    }
    const p = clamp(pl.progress);
    if (shown.p !== p) {
      shown.p = p;
      const bar = $('pl-bar');
      bar.firstElementChild.style.transform = `scaleX(${p / 100})`;
      bar.lastElementChild.textContent = fmtNum(p) + '%';
      bar.dataset.progress = p;
      bar.setAttribute('aria-valuenow', String(p));
    }
    set(shown, 'title', $('pl-title'), 'textContent', `#${pl.id} ${pl.name}`);
    const when = pl.finished_at ? `finished ${fmtTime(pl.finished_at)}` : `created ${fmtTime(pl.created_at)}`;
    set(shown, 'info', $('pl-info'), 'textContent', `on failure: ${pl.on_failure} · ${when}` +
      (pl.rules && pl.rules.length ? ' · rules: ' + pl.rules.map((r) => `${r.name} ${r.then} when ${r.when}`).join('; ') : ''));
    updateGraph(pl);
    if (events.id !== pl.id || events.seen !== pl.events) loadEvents(pl.id);
  }

  /* One request at a time; a count that moved meanwhile asks again. */
  async function loadEvents(id) {
    if (events.id !== id) events = { id, seen: -1, loading: false, list: [] };
    if (events.loading) return;
    const want = pipelines.get(id);
    if (!want) return;
    if (!want.events) { /* nothing fired: nothing to fetch */
      events.seen = want.events;
      drawEvents();
      return;
    }
    events.loading = true;
    const count = want.events;
    const r = await ctx.api('GET', `/pipelines/${id}/events`);
    if (events.id !== id) return;
    events.loading = false;
    if (r.ok) {
      events.list = r.data.events || [];
      events.seen = count;
      requestAnimationFrame(drawEvents);
    }
    const now = pipelines.get(id);
    if (r.ok && now && now.events !== count) loadEvents(id);
  }

  function drawEvents() {
    const ul = $('pl-events');
    const list = events.id === selected ? events.list : [];
    ul.hidden = list.length === 0;
    const key = list.length ? list[list.length - 1].id + ':' + list.length : '';
    if (ul.dataset.key === key) return;
    ul.dataset.key = key;
    ul.textContent = '';
    for (const e of list.slice().reverse()) {
      const li = document.createElement('li'), rule = document.createElement('span');
      rule.className = 'ev-rule';
      rule.textContent = `${e.rule} ${e.then}`;
      const vals = Object.entries(e.values || {}).map(([k, v]) => `${k}=${v === null ? 'unknown' : v}`).join(' ');
      li.append(`${fmtTime(e.at)} `, rule, ` ${vals} → ${e.outcome}`);
      li.title = e.when || '';
      ul.appendChild(li);
    }
  }

  /* Select a pipeline (0: none).  The address follows (#/pipelines/ID,
   * app.js) unless the address is what asked for it (`quiet`). */
  function select(id, quiet) {
    selected = pipelines.has(id) ? id : 0;
    if (!quiet && ctx.pipelineSelected) ctx.pipelineSelected(selected);
    for (const r of items.values()) r.b.setAttribute('aria-pressed', 'false');
    const r = items.get(selected);
    if (r) r.b.setAttribute('aria-pressed', 'true');
    if (!selected) {
      $('pl-detail').hidden = true;
      $('pl-graph').textContent = '';
      graph = null;
      events = { id: 0, seen: -1, loading: false, list: [] };
      drawEvents();
      return;
    }
    shown = {};
    renderDetail(pipelines.get(selected));
    drawEvents();
  }

  /* ---- what app.js calls, from its animation frame -------------------------------------- */

  function update(pl) {
    pipelines.set(pl.id, pl);
    updateItem(pl);
    if (pl.id === selected) renderDetail(pl);
    if (section.hidden) section.hidden = false;
  }

  function remove(id) {
    pipelines.delete(id);
    const r = items.get(id);
    if (r) {
      r.li.remove();
      items.delete(id);
    }
    if (selected === id) select(0, true);
    section.hidden = pipelines.size === 0;
  }

  function reset(all) {
    const keep = new Set(all.map((p) => p.id));
    for (const id of [...items.keys()]) if (!keep.has(id)) remove(id);
    for (const p of all) update(p);
    if (selected && !pipelines.has(selected)) select(0, true);
    section.hidden = pipelines.size === 0;
  }

  /* The job panel's selection moved: outline the step whose job it is. */
  function jobSelected(id) {
    if (!graph) return;
    for (const r of graph.steps.values()) r.box.classList.toggle('selected', r.job != null && r.job === id);
  }

  /* ---- input ------------------------------------------------------------------------------ */

  list.addEventListener('click', (e) => {
    const li = e.target.closest('li[data-id]');
    if (li) select(selected === Number(li.dataset.id) ? 0 : Number(li.dataset.id));
  });

  $('pl-actions').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b || !selected) return;
    const id = selected, act = b.dataset.act;
    b.disabled = true; /* one request per click; the stream brings the result */
    const r = act === 'delete' ? await ctx.api('DELETE', `/pipelines/${id}`) : await ctx.api('POST', `/pipelines/${id}/${act}`);
    b.disabled = false;
    if (!r.ok) ctx.toast(errorText(r));
  });
  $('pl-close').addEventListener('click', () => select(0));

  /* A step: open its job, or retry it. */
  async function stepAction(target) {
    const box = target.closest('.pl-step');
    if (!box || !graph) return;
    const name = box.dataset.step, r = graph.steps.get(name);
    if (target.closest('.pl-retry')) {
      const id = selected;
      if (r.retrying) return;
      r.retrying = true;
      const res = await ctx.api('POST', `/pipelines/${id}/steps/${encodeURIComponent(name)}/retry`);
      r.retrying = false;
      if (!res.ok) ctx.toast(errorText(res));
      return;
    }
    if (r.job != null) ctx.select(r.job);
    else ctx.toast(`step ${name} has not run yet`);
  }
  $('pl-graph').addEventListener('click', (e) => stepAction(e.target));
  $('pl-graph').addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && e.target.closest('[role="button"]')) {
      e.preventDefault();
      stepAction(e.target);
    }
  });

  return { update, remove, reset, jobSelected, select, selected: () => selected, has: (id) => pipelines.has(id) };
}
