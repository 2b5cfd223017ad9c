/*
 * view.js — the jobs table: one row per job, newest first, updated in place.
 *
 * A row is built once per job; an update writes only the cells whose text
 * changed (the last written values are kept on the row), so a progress
 * message costs one style write and one text write.  Rows out of view (an
 * IntersectionObserver says which, with a margin) are not written at all:
 * they keep the job and are brought up to date as they come into view.
 * With 300 jobs moving, ~20 visible rows are touched per frame, not 300.
 * A status change is always written (the filter and the row's colour follow
 * it).  Buttons are handled by one delegated listener on the table body.
 * The node column (the galvanid node that runs each job) is in every row
 * and shown by CSS only when galvanid is one of several nodes.
 * The filter (status chip, the filter box's words and labels, created
 * since) hides rows with a class; it only depends on the status among the
 * things that change, so rows out of view need no update for it.
 */
import { ACTIVE, fmtDur, fmtNum, fmtTime } from './format.js';

/* What can be done to a job in each status (the daemon decides; this only
 * avoids offering what it would refuse with 409). */
const ACTIONS = [
  ['pause', 'Pause', (s) => s === 'running'],
  ['resume', 'Resume', (s) => s === 'paused'],
  ['cancel', 'Cancel', (s) => ACTIVE.has(s)],
  ['delete', 'Delete', (s) => !ACTIVE.has(s)],
];

/* The filter box: words match the job's name (case-insensitive; "#17" or
 * "17" its id), `key=value` a label exactly and `key=` any value of it;
 * all of them must match. */
export function parseQuery(text) {
  const terms = [], labels = [];
  for (const w of String(text || '').trim().split(/\s+/)) {
    if (!w) continue;
    const eq = w.indexOf('=');
    if (eq > 0) labels.push([w.slice(0, eq), w.slice(eq + 1)]);
    else terms.push(w.toLowerCase());
  }
  return { terms, labels };
}

export function matches(job, f) {
  if (f.status && job.status !== f.status) return false;
  if (f.since && !(Date.parse(job.created_at) >= Date.now() - f.since * 1000)) return false;
  const name = String(job.name || '').toLowerCase();
  for (const t of f.terms)
    if (!name.includes(t) && t !== '#' + job.id && t !== String(job.id)) return false;
  const labels = job.labels || {};
  for (const [k, v] of f.labels)
    if (!(k in labels) || (v !== '' && String(labels[k]) !== v)) return false;
  return true;
}

function commandText(job) {
  if (job.kind === 'demo') return 'built-in demo job';
  if (Array.isArray(job.command)) return job.command.join(' ');
  return job.command || '';
}

function rateText(job) {
  const s = job.status;
  if (s === 'queued') return 'waiting for a slot';
  if (s === 'running' || s === 'paused') {
    const rate = Number.isFinite(job.rate) ? fmtNum(job.rate) + ' %/s' : '—';
    if (s === 'paused') return 'paused · ' + rate;
    return rate + (Number.isFinite(job.eta) ? ' · ETA ' + fmtDur(job.eta) : '');
  }
  const took = job.started_at && job.finished_at
    ? 'took ' + fmtDur((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000) : '';
  const end = job.signal != null ? 'signal ' + job.signal : job.exit_code != null ? 'exit ' + job.exit_code : '';
  return [took, end].filter(Boolean).join(' · ') || '—';
}

export function createTable(ctx) {
  const tbody = document.getElementById('rows');
  const rows = new Map(); /* id -> { tr, cells, last, job, visible, stale } */
  let filter = { status: '', terms: [], labels: [], since: 0 };
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const r = rows.get(Number(e.target.dataset.id));
      if (!r) continue;
      r.visible = e.isIntersecting;
      if (r.visible && r.stale) update(r.job);
    }
  }, { rootMargin: '400px 0px' });

  function build(job) {
    const tr = document.createElement('tr');
    tr.dataset.id = job.id;
    if (ctx.state.selected === job.id) tr.classList.add('selected');
    tr.innerHTML =
      '<td class="id"></td><td class="c-name"><span class="jname"></span><span class="jcmd mono"></span></td>' +
      '<td class="status"><span class="badge"></span></td><td class="node mono"></td>' +
      '<td class="c-bar"><div class="bar"><i></i><span></span></div></td>' +
      '<td class="rate"></td><td class="start"></td><td class="c-act"><div class="actions"></div></td>';
    const td = tr.children;
    const actions = td[7].firstChild;
    for (const [act, label] of ACTIONS) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.act = act;
      b.textContent = label;
      actions.appendChild(b);
    }
    td[0].textContent = job.id;
    const r = {
      tr, last: {}, job, visible: true, stale: false,
      name: td[1].children[0], cmd: td[1].children[1], badge: td[2].firstChild, node: td[3],
      fill: td[4].firstChild.children[0], pct: td[4].firstChild.children[1],
      rate: td[5], start: td[6], buttons: [...actions.children],
    };
    rows.set(job.id, r);
    seen.observe(tr);
    return r;
  }

  /* Write `value` into el[prop] only when it changed since the last write. */
  function set(r, key, el, prop, value) {
    if (r.last[key] !== value) {
      r.last[key] = value;
      el[prop] = value;
    }
  }

  function update(job) {
    const r = rows.get(job.id) || insert(build(job), job.id);
    const s = job.status;
    r.job = job;
    r.stale = !r.visible && r.last.status === s;
    if (r.stale) return;
    if (r.last.status !== s) {
      r.last.status = s;
      r.tr.dataset.status = s;
      r.badge.textContent = s;
      for (const [i, [, , allowed]] of ACTIONS.entries()) r.buttons[i].hidden = !allowed(s);
      r.tr.classList.toggle('match', matches(job, filter));
    }
    const p = Math.max(0, Math.min(100, Number(job.progress) || 0));
    if (r.last.p !== p) {
      r.last.p = p;
      r.fill.style.transform = `scaleX(${p / 100})`;
      r.tr.dataset.progress = p;
    }
    /* "54/200" when the job counts in its own units (::progress N/TOTAL) */
    const label = job.total && job.total !== 100 ? `${fmtNum(p)}% · ${job.current}/${job.total}` : fmtNum(p) + '%';
    set(r, 'pct', r.pct, 'textContent', label);
    set(r, 'name', r.name, 'textContent', job.name || '#' + job.id);
    set(r, 'nameTitle', r.name, 'title', job.name || '');
    set(r, 'cmd', r.cmd, 'textContent', job.message || commandText(job));
    /* the node column shows only in a cluster (app.js sets data-cluster on the table) */
    set(r, 'node', r.node, 'textContent', job.node || '—');
    set(r, 'nodeTitle', r.node, 'title', job.node ? 'runs on node ' + job.node
      : s === 'queued' ? 'queued: no node has claimed it yet' : 'no node ran it');
    /* Rate and ETA text at most once a second per row (unless the status
     * changed): it is read at that pace, and repainting hundreds of changing
     * texts every frame was half of the page's paint time (measured with
     * bench_many_jobs.mjs).  The interval below writes what was held back. */
    if (r.last.rateStatus !== s || performance.now() - (r.rateAt || 0) >= 1000) writeRate(r);
    else held.add(r);
    set(r, 'start', r.start, 'textContent', fmtTime(job.started_at || job.created_at));
    set(r, 'startTitle', r.start, 'title', (job.started_at ? 'started ' : 'created ') + (job.started_at || job.created_at));
    set(r, 'title', r.tr, 'title', job.error || '');
  }

  const held = new Set(); /* rows whose rate text waits for the next second */
  function writeRate(r) {
    r.rateAt = performance.now();
    r.last.rateStatus = r.job.status;
    set(r, 'rate', r.rate, 'textContent', rateText(r.job));
    held.delete(r);
  }
  setInterval(() => {
    for (const r of held) {
      if (rows.get(r.job.id) !== r) held.delete(r); /* removed */
      else if (r.visible) writeRate(r);
    }
  }, 1000);

  /* Newest first: before the first row with a smaller id.  A new job has the
   * largest id, so this is almost always the first comparison. */
  function insert(r, id) {
    let before = tbody.firstChild;
    while (before && Number(before.dataset.id) > id) before = before.nextSibling;
    tbody.insertBefore(r.tr, before);
    return r;
  }

  function remove(id) {
    const r = rows.get(id);
    if (r) {
      seen.unobserve(r.tr);
      r.tr.remove();
      rows.delete(id);
    }
  }

  /* After a snapshot: drop the rows of jobs that no longer exist, update the rest. */
  function reset(jobs) {
    const keep = new Set(jobs.map((j) => j.id));
    for (const id of [...rows.keys()]) if (!keep.has(id)) remove(id);
    for (const j of jobs) update(j);
    select(ctx.state.selected);
  }

  function select(id) {
    for (const r of tbody.querySelectorAll('tr.selected')) r.classList.remove('selected');
    const r = rows.get(id);
    if (r) r.tr.classList.add('selected');
  }

  /* Show only the jobs that match (see matches()); `f` changes some of
   * status, query (the filter box's text) and since (seconds).  Returns
   * how many rows are shown. */
  function setFilter(f) {
    if ('query' in f) Object.assign(filter, parseQuery(f.query));
    if ('status' in f) filter.status = f.status;
    if ('since' in f) filter.since = f.since;
    const active = filter.status || filter.terms.length || filter.labels.length || filter.since;
    if (active) tbody.dataset.filter = '1';
    else delete tbody.dataset.filter;
    let shown = 0;
    for (const r of rows.values()) {
      const m = matches(r.job, filter);
      r.tr.classList.toggle('match', m);
      shown += m;
    }
    return shown;
  }
  /* "created in the last hour" moves with the clock */
  setInterval(() => { if (filter.since) setFilter({}); }, 30000);

  tbody.addEventListener('click', (e) => {
    const tr = e.target.closest('tr');
    if (!tr) return;
    const id = Number(tr.dataset.id);
    const b = e.target.closest('button[data-act]');
    if (b) {
      b.disabled = true; /* one request per click; the stream brings the result */
      ctx.act(id, b.dataset.act).finally(() => { b.disabled = false; });
      return;
    }
    ctx.select(ctx.state.selected === id ? 0 : id);
  });

  function shownCount() {
    let n = 0;
    for (const r of rows.values()) n += r.tr.classList.contains('match');
    return n;
  }

  return { update, remove, reset, select, setFilter, shownCount };
}
