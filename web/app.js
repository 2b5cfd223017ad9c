/*
 * app.js — the dashboard's entry point: the connection to galvanid and the
 * client-side state.
 *
 * State comes only from the /ws/jobs stream (docs/api.md, "Streams"): a
 * snapshot first, which REPLACES everything (also after a reconnect: the
 * snapshot is the daemon's current truth), then "update" messages (?v=2:
 * per flush, each changed job's changed fields — merged into the job by id,
 * the whole job the first time — removed ids, counts, pipelines; the v1
 * "job", "removed", "counts" messages are understood too); pipelines (the
 * snapshot's "pipelines", "pipeline" replaces one by id, "pipeline_removed"
 * drops it; drawn by pipelines.js).  Actions go through the JSON API
 * and do not touch the state: their effect comes back over the stream within
 * one flush (20 ms), so the page never shows a state the daemon has not
 * committed, and a response cannot race an older stream message.
 *
 * Rendering is batched: a message only marks its job dirty; one
 * requestAnimationFrame callback per frame updates the dirty rows in place
 * (view.js), the counts, the selected job's panel (detail.js) and the dirty
 * pipelines (pipelines.js: the list and the selected one's graph).  With
 * hundreds of jobs each sending 50 updates/s this costs one DOM update per
 * job per frame, and nothing while the tab is hidden.
 *
 * The history behind the charts (progress and each ::metric over time) is
 * kept here, client-side, from the moment the page sees a job; each series
 * is bounded (MAX_POINTS, thinned by half when full, so it keeps its whole
 * time span at a coarser resolution).  When a job is opened, its metric
 * history as galvanid keeps it (GET /jobs/{id}/metrics) replaces what the
 * page saw itself, so a reload or a late visitor draws the whole run; and
 * its params history (GET /jobs/{id}/params/history) gives the charts a
 * mark per params change, fetched again whenever params_revision moves;
 * its rule firings (GET /jobs/{id}/events) a red mark each, fetched again
 * whenever the job's `events` count moves.
 *
 * The address says what is open: #/jobs/17, #/pipelines/3, or both
 * (#/pipelines/3/jobs/17).  Selecting pushes a history entry (so back and
 * forward move between selections and the link can be shared); a page
 * loaded with such an address opens it once the first snapshot is drawn
 * (a job not in the snapshot is fetched); back/forward apply the address
 * without pushing.  The jobs can be filtered by status (the chips), by name
 * and label (the filter box: words match the name, key=value a label) and
 * by creation time (view.js).
 *
 * The selected job's log is followed over the same WebSocket (detail.js):
 * followLog() sends {"type":"log","job":ID,"offset":N}, "log" messages go
 * to the panel, and a new connection re-sends it from the last byte seen.
 * A job another node runs keeps its log on that node's disk, which this
 * node's stream cannot read: the page polls GET /jobs/{id}/log?offset=N
 * instead (this node relays it there), every LOG_POLL_MS, and hands the
 * bytes to the panel as the same "log" messages.
 *
 * Nodes: with several galvanid nodes on one PostgreSQL (docs/cluster.md)
 * every job says which node runs it ("node").  GET /nodes is read when a
 * snapshot arrives and every NODES_EVERY_MS while the stream is live and
 * the tab visible; with more than one node (or jobs naming more than one,
 * before it answers) the jobs table shows its node column and the Nodes
 * panel lists them: state, heartbeat age (counted on between reads), load,
 * address, the node that serves this page marked.  A single galvanid shows
 * neither: its node is in the job's panel only.
 *
 * Auth: a token given as /#token=... or ?token=... is moved into
 * sessionStorage (and out of the address bar), sent as "Authorization:
 * Bearer" on every request and as ?token= on the WebSocket URL (browsers
 * cannot set headers on a WebSocket).  Without a token nothing is sent.
 */
import { createTable } from './view.js';
import { createDetail } from './detail.js';
import { createPipelines } from './pipelines.js';
import { setupNewJobForm } from './forms.js';
import { STATUSES, errorText, fmtDur } from './format.js';

const TOKEN_KEY = 'galvani.token';
const MAX_POINTS = 600; /* above the daemon's 512 per series: a loaded history is drawn whole */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const LOG_POLL_MS = 1000; /* another node's job: its log read over HTTP this often */
const NODES_EVERY_MS = 5000; /* a node's heartbeat (and GET /nodes' data) moves every lease / 3: 5 s by default */

const $ = (id) => document.getElementById(id);

/* ---- token ------------------------------------------------------------------ */

function takeTokenFromUrl() {
  const url = new URL(location.href);
  const hashText = url.hash.replace(/^#/, '');
  const isRoute = hashText.startsWith('/'); /* #/jobs/17: an address, not parameters */
  const hash = new URLSearchParams(isRoute ? '' : hashText);
  const t = hash.get('token') || url.searchParams.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    hash.delete('token');
    url.searchParams.delete('token');
    const rest = hash.toString();
    if (!isRoute) url.hash = rest ? '#' + rest : '';
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
let token = takeTokenFromUrl();

/* ---- state ---------------------------------------------------------------------- */

const state = {
  jobs: new Map(),      /* id -> the latest job object */
  hist: new Map(),      /* id -> { created, progress: series, metrics: Map name -> series,
                           marks: [{ t, rev }] (params changes), marksRev,
                           events: [{ t, rule, then, outcome, values }] (rule firings), eventsSeen } */
  pipelines: new Map(), /* id -> the latest pipeline object */
  counts: null,
  selected: 0,
};

function pushPoint(s, t, v) {
  s.t.push(t);
  s.v.push(v);
  if (s.t.length > MAX_POINTS) {
    /* keep every other point (and always the newest): same span, half the resolution */
    const keep = (_, i, a) => i % 2 === 0 || i === a.length - 1;
    s.t = s.t.filter(keep);
    s.v = s.v.filter(keep);
  }
}

/* Record the job's progress and metrics if they changed. */
function record(job, now) {
  let h = state.hist.get(job.id);
  if (!h || h.created !== job.created_at) {
    h = { created: job.created_at, progress: { t: [], v: [] }, metrics: new Map(), marks: [], marksRev: -1,
          events: [], eventsSeen: -1 };
    state.hist.set(job.id, h);
  }
  const p = h.progress;
  if (typeof job.progress === 'number' && (p.v.length === 0 || p.v[p.v.length - 1] !== job.progress))
    pushPoint(p, now, job.progress);
  for (const [name, value] of Object.entries(job.metrics || {})) {
    const v = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(v)) continue;
    let s = h.metrics.get(name);
    if (!s) h.metrics.set(name, (s = { t: [], v: [] }));
    if (s.v.length === 0 || s.v[s.v.length - 1] !== v) pushPoint(s, now, v);
  }
}

/* The daemon's history of job `id`: its metric series replace what the
 * page recorded up to their last point (points the page saw after it are
 * kept), and the params changes become marks.  Resolves to true if the job
 * is still known. */
async function loadHistory(id, withMetrics) {
  const known = state.jobs.get(id);
  const [m, p, ev] = await Promise.all([
    withMetrics ? api('GET', `/jobs/${id}/metrics`) : Promise.resolve({ ok: false }),
    api('GET', `/jobs/${id}/params/history`),
    known && known.events != null ? api('GET', `/jobs/${id}/events`) : Promise.resolve({ ok: false }),
  ]);
  const job = state.jobs.get(id);
  if (!job) return false;
  record(job, Date.now());
  const h = state.hist.get(id);
  if (m.ok) {
    for (const [name, pts] of Object.entries(m.data.metrics || {})) {
      const s = { t: pts.map((pt) => pt[0]), v: pts.map((pt) => pt[1]) };
      const last = s.t.length ? s.t[s.t.length - 1] : -Infinity;
      const seen = h.metrics.get(name);
      /* like record(): a point only for a new value (the page's own point for
       * the value it found at load time is the daemon's last one) */
      if (seen) {
        for (let i = 0; i < seen.t.length; i++)
          if (seen.t[i] > last && seen.v[i] !== s.v[s.v.length - 1]) pushPoint(s, seen.t[i], seen.v[i]);
      }
      h.metrics.set(name, s);
    }
  }
  if (p.ok) {
    h.marks = p.data.history.map((e) => ({ t: Date.parse(e.at), rev: e.revision }));
    h.marksRev = p.data.params_revision;
  }
  if (ev.ok) {
    h.events = ev.data.events.map((e) => ({
      t: Date.parse(e.at), rule: e.rule, then: e.then, outcome: e.outcome, values: e.values, at: e.at,
    }));
    h.eventsSeen = ev.data.events.length;
  } else if (job.events == null) {
    h.eventsSeen = undefined; /* no rules: nothing to fetch */
  }
  return true;
}

/* ---- the API ------------------------------------------------------------------ */

/* fetch with the token; never throws.  { ok, status, data, text, error } where
 * error is the daemon's {code, message} (or a network error in that shape). */
async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { ok: false, status: 0, error: { code: 'unreachable', message: 'galvanid is not reachable (' + e.message + ')' } };
  }
  const text = await res.text().catch(() => '');
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.status === 401) showUnauthorized(data && data.error ? data.error.message : '');
  if (!res.ok) {
    const error = (data && data.error) || { code: 'http_' + res.status, message: text.trim() || res.statusText };
    return { ok: false, status: res.status, data, text, error };
  }
  return { ok: true, status: res.status, data, text };
}

let toastTimer = 0;
function toast(msg) {
  const el = $('toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

async function act(id, action) {
  const r = action === 'delete' ? await api('DELETE', `/jobs/${id}`) : await api('POST', `/jobs/${id}/${action}`);
  if (!r.ok) toast(errorText(r));
  return r;
}

/* ---- rendering ----------------------------------------------------------------- */

const dirty = new Set(), plDirty = new Set();
let plResetPending = false, countsDirty = false, resetPending = false, framePending = false;

function schedule() {
  if (!framePending) {
    framePending = true;
    requestAnimationFrame(frame);
  }
}

function frame() {
  framePending = false;
  if (resetPending) {
    resetPending = false;
    table.reset([...state.jobs.values()]);
    if (state.selected) {
      if (state.jobs.has(state.selected)) detail.update(state.jobs.get(state.selected));
      else select(0, undefined, 'replace');
    }
    dirty.clear();
  }
  for (const id of dirty) {
    const job = state.jobs.get(id);
    if (job) table.update(job);
  }
  if (state.selected && dirty.has(state.selected)) detail.update(state.jobs.get(state.selected));
  dirty.clear();
  if (plResetPending) {
    plResetPending = false;
    pipes.reset([...state.pipelines.values()]);
    plDirty.clear();
  }
  for (const id of plDirty) {
    const pl = state.pipelines.get(id);
    if (pl) pipes.update(pl);
  }
  plDirty.clear();
  if (countsDirty) {
    countsDirty = false;
    renderCounts();
  }
  $('empty').hidden = state.jobs.size > 0;
  if (filterActive()) {
    const n = table.shownCount();
    $('shown').textContent = `${n} of ${state.jobs.size}`;
    $('no-match').hidden = n > 0 || state.jobs.size === 0;
  }
  if (routePending && snapshotSeen) {
    routePending = false;
    applyRoute();
  }
}

/* ---- filters ------------------------------------------------------------------ */

let chip = '';
const filterActive = () => Boolean(chip || $('search').value.trim() || Number($('since').value));
function applyFilter() {
  const n = table.setFilter({ status: chip, query: $('search').value, since: Number($('since').value) || 0 });
  const on = filterActive();
  $('shown').textContent = on ? `${n} of ${state.jobs.size}` : '';
  $('no-match').hidden = !on || n > 0 || state.jobs.size === 0;
}
$('search').addEventListener('input', applyFilter);
$('since').addEventListener('change', applyFilter);
function renderCounts() {
  const nav = $('counts');
  const c = state.counts || {};
  if (!nav.firstChild) {
    for (const st of STATUSES) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.status = st;
      b.setAttribute('aria-pressed', 'false');
      b.title = 'show only ' + st + ' jobs (click again for all)';
      b.innerHTML = '<i class="dot"></i><span></span><b></b>';
      b.children[1].textContent = st;
      b.addEventListener('click', () => {
        chip = chip === st ? '' : st;
        for (const x of nav.querySelectorAll('.chip[data-status]'))
          x.setAttribute('aria-pressed', String(x.dataset.status === chip));
        applyFilter();
      });
      nav.appendChild(b);
    }
    const total = document.createElement('span');
    total.className = 'chip static';
    total.id = 'count-total';
    nav.appendChild(total);
  }
  for (const st of STATUSES)
    nav.querySelector(`.chip[data-status="${st}"] b`).textContent = String(c[st] ?? 0);
  $('count-total').textContent = `total ${c.total ?? 0} · max running ${c.max_running ?? '?'}`;
}

/* Select a job (0: none).  `known` is the job as an API response gave it,
 * for a job created a moment ago whose stream message may not be here yet.
 * `how` the address follows: 'push' (a person chose it: a history entry),
 * 'replace' (the job went away), 'none' (the address asked for it). */
function select(id, known, how = 'push') {
  state.selected = id;
  table.select(id);
  detail.show(id ? state.jobs.get(id) || known : null);
  pipes.jobSelected(id);
  if (how !== 'none') setRoute({ job: id }, how === 'replace');
  /* one column (narrow screens): the panel is below the list, bring it up */
  if (id && how === 'push' && matchMedia('(max-width: 1100px)').matches)
    $('detail').scrollIntoView({ block: 'start' });
}

/* ---- the address ------------------------------------------------------------------ */

function parseRoute(hash) {
  const m = /^#\/(?:pipelines\/(\d+)\/?)?(?:jobs\/(\d+))?\/?$/.exec(hash || '');
  return m ? { pipeline: Number(m[1] || 0), job: Number(m[2] || 0) } : { pipeline: 0, job: 0 };
}

function setRoute(patch, replace) {
  const r = { ...parseRoute(location.hash), ...patch };
  const path = (r.pipeline ? `/pipelines/${r.pipeline}` : '') + (r.job ? `/jobs/${r.job}` : '');
  const hash = path ? '#' + path : '';
  if (hash === location.hash) return;
  const url = location.pathname + location.search + (hash || '');
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}

/* Open what the address names (after the first snapshot; on back/forward). */
let routePending = true, snapshotSeen = false;
async function applyRoute() {
  if (!snapshotSeen) return;
  const r = parseRoute(location.hash);
  if (r.pipeline !== pipes.selected()) pipes.select(pipes.has(r.pipeline) ? r.pipeline : 0, true);
  if (r.job === state.selected) return;
  if (!r.job || state.jobs.has(r.job)) {
    select(r.job, undefined, 'none');
    return;
  }
  /* older than the snapshot's newest 1000: ask for it */
  const res = await api('GET', `/jobs/${r.job}`);
  if (parseRoute(location.hash).job !== r.job) return; /* the address moved on meanwhile */
  if (res.ok) select(r.job, res.data, 'none');
  else toast(`#/jobs/${r.job}: ${errorText(res)}`);
}
addEventListener('popstate', applyRoute);
addEventListener('hashchange', applyRoute);

/* ---- nodes ------------------------------------------------------------------------ */

const nodes = {
  list: [],            /* GET /nodes' last answer */
  at: 0,               /* when it came (Date.now()): heartbeat ages count on from it */
  self: '',            /* the id of the node that serves this page */
  jobNodes: new Set(), /* every node a job of the page named */
};
const isCluster = () => nodes.list.length > 1 || nodes.jobNodes.size > 1;

let nodesLoading = false;
async function loadNodes() {
  if (nodesLoading || !snapshotSeen || document.hidden) return;
  nodesLoading = true;
  const r = await api('GET', '/nodes');
  nodesLoading = false;
  if (!r.ok || !r.data || !Array.isArray(r.data.nodes)) return; /* an older galvanid: the jobs' nodes still tell */
  nodes.list = r.data.nodes;
  nodes.at = Date.now();
  const me = nodes.list.find((n) => n.self);
  nodes.self = me ? me.id : '';
  renderNodes();
}
setInterval(loadNodes, NODES_EVERY_MS);
document.addEventListener('visibilitychange', loadNodes);

/* A job named a node: a second one makes the page a cluster's. */
function noteJobNode(job) {
  if (job.node && !nodes.jobNodes.has(job.node)) {
    nodes.jobNodes.add(job.node);
    if (nodes.jobNodes.size === 2) renderNodes();
  }
}

const NODE_STATE_COLOR = { up: 'succeeded', left: 'cancelled', lost: 'failed' };
function heartbeatText(n) {
  if (!Number.isFinite(n.heartbeat_age)) return ['—', false];
  const age = n.heartbeat_age + (n.state === 'up' ? (Date.now() - nodes.at) / 1000 : 0);
  return [fmtDur(age) + ' ago', n.state === 'up' && Number.isFinite(n.lease) && age > n.lease];
}

function renderNodes() {
  $('rows').closest('table').toggleAttribute('data-cluster', isCluster());
  /* the job's panel says where it runs: "(this node)", another node's address and state */
  if (state.selected) {
    dirty.add(state.selected);
    schedule();
  }
  const panel = $('nodes');
  panel.hidden = nodes.list.length < 2;
  if (panel.hidden) return;
  const up = nodes.list.filter((n) => n.state === 'up').length;
  $('nodes-info').textContent = `${up} up of ${nodes.list.length}`;
  const tbody = $('node-rows');
  tbody.textContent = '';
  for (const n of nodes.list) {
    const tr = document.createElement('tr');
    tr.dataset.node = n.id;
    tr.classList.toggle('self', Boolean(n.self));
    tr.innerHTML = '<td class="n-id"><span class="nname"></span><span class="naddr mono"></span></td>' +
      '<td class="n-state"><span class="badge"></span></td><td class="n-beat"></td><td class="n-load"></td>';
    const [id, st, beat, load] = tr.children;
    id.firstChild.textContent = n.id;
    id.firstChild.title = n.id + (n.self ? ': the node that serves this page' : '');
    if (n.self) {
      const me = document.createElement('small');
      me.className = 'nself';
      me.textContent = ' · this node';
      id.firstChild.appendChild(me);
    }
    id.lastChild.textContent = n.address || '';
    st.firstChild.textContent = n.state;
    st.firstChild.dataset.status = NODE_STATE_COLOR[n.state] || '';
    const [text, late] = heartbeatText(n);
    beat.textContent = text;
    beat.classList.toggle('late', late);
    beat.title = late ? 'older than its lease: the next node to look will declare it lost' : '';
    load.textContent = Number.isFinite(n.running) ? `${n.running}/${n.max_running ?? '?'}` : '—';
    tbody.appendChild(tr);
  }
}
/* heartbeat ages go on between reads */
setInterval(() => {
  if ($('nodes').hidden || document.hidden) return;
  for (const tr of $('node-rows').children) {
    const n = nodes.list.find((x) => x.id === tr.dataset.node);
    if (!n) continue;
    const [text, late] = heartbeatText(n);
    tr.children[2].textContent = text;
    tr.children[2].classList.toggle('late', late);
  }
}, 1000);

/* ---- the log subscription (one per connection; detail.js decides) ---------------- */

let logWanted = null; /* { job, offset } or null */
function followLog(job, offset = 0) {
  logWanted = job ? { job, offset } : null;
  sendLogWanted();
}
function sendLogWanted() {
  if (!ws || ws.readyState !== WebSocket.OPEN || !snapshotSeen) return; /* sent after the next snapshot */
  ws.send(JSON.stringify(logWanted ? { type: 'log', job: logWanted.job, offset: logWanted.offset } : { type: 'log', job: null }));
}

/* Another node's job: its log over HTTP (relayed to that node), from the
 * panel's last byte on.  A new subscription (followLog) starts over from
 * its offset; bytes are decoded as a stream, so a UTF-8 sequence cut by a
 * read is completed by the next one. */
let logPoll = { wanted: null, next: 0, decoder: null, busy: false };
function logElsewhere(id) {
  const j = state.jobs.get(id);
  return !!(j && j.node && nodes.self && j.node !== nodes.self);
}
async function pollLog() {
  const w = logWanted;
  if (!w || logPoll.busy || document.hidden || !logElsewhere(w.job)) return;
  if (logPoll.wanted !== w) logPoll = { wanted: w, next: w.offset, decoder: new TextDecoder(), busy: false };
  const poll = logPoll;
  poll.busy = true;
  try {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const res = await fetch(`/jobs/${w.job}/log?offset=${poll.next}`, { headers, cache: 'no-store' });
    const bytes = res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
    if (bytes && bytes.length && logWanted === w && logPoll === poll) {
      const offset = poll.next;
      poll.next += bytes.length;
      detail.onLog({ type: 'log', job: w.job, offset, next: poll.next, data: poll.decoder.decode(bytes, { stream: true }) });
    }
  } catch { /* not reachable now: the next poll tries again */ }
  poll.busy = false;
}
setInterval(pollLog, LOG_POLL_MS);

const ctx = {
  api, act, toast, select, state, history: (id) => state.hist.get(id), loadHistory, followLog,
  pipelineSelected: (id) => setRoute({ pipeline: id }),
  node: (id) => ({ self: id === nodes.self, info: nodes.list.find((n) => n.id === id), cluster: isCluster() }),
};
const table = createTable(ctx);
const detail = createDetail(ctx);
const pipes = createPipelines(ctx);
setupNewJobForm(ctx);

/* ---- the stream ------------------------------------------------------------------ */

let ws = null, attempt = 0, retryAt = 0, retryTimer = 0, countdown = 0, wasLive = false;

function setConn(st, text) {
  const el = $('conn');
  el.dataset.state = st;
  el.textContent = text;
}

function banner(kind, text) {
  const b = $('banner');
  if (!kind) {
    b.hidden = true;
    document.body.classList.remove('stale');
    return;
  }
  b.hidden = false;
  b.dataset.kind = kind;
  $('banner-text').textContent = text;
  $('token-form').hidden = kind !== 'auth';
  document.body.classList.toggle('stale', kind === 'disconnected');
}

function showUnauthorized(message) {
  setConn('unauthorized', 'unauthorized');
  banner('auth', (token ? 'galvanid refused the token (401 Unauthorized)' : 'galvanid requires a token (401 Unauthorized)') +
         (message ? ': ' + message : '') + '. Open this page as /#token=YOUR_TOKEN, or paste it here:');
}

function setJob(job, now) {
  state.jobs.set(job.id, job);
  noteJobNode(job);
  record(job, now);
  dirty.add(job.id);
}

function removeJob(id) {
  state.jobs.delete(id);
  state.hist.delete(id);
  table.remove(id);
  if (state.selected === id) select(0, undefined, 'replace');
}

function setPipeline(p) {
  state.pipelines.set(p.id, p);
  plDirty.add(p.id);
}

function removePipeline(id) {
  state.pipelines.delete(id);
  plDirty.delete(id);
  pipes.remove(id);
}

function onMessage(msg) {
  const now = Date.now();
  switch (msg.type) {
  case 'snapshot':
    state.jobs = new Map(msg.jobs.map((j) => [j.id, j]));
    nodes.jobNodes = new Set(msg.jobs.map((j) => j.node).filter(Boolean));
    for (const id of [...state.hist.keys()]) if (!state.jobs.has(id)) state.hist.delete(id);
    for (const j of msg.jobs) record(j, now);
    state.pipelines = new Map((msg.pipelines || []).map((p) => [p.id, p]));
    state.counts = msg.counts;
    resetPending = plResetPending = countsDirty = true;
    attempt = 0;
    wasLive = true;
    snapshotSeen = true;
    /* a new connection: follow the open job's log from the last byte seen */
    detail.resubscribe();
    setConn('live', msg.truncated ? 'live (newest 1000 jobs)' : 'live');
    banner(null);
    renderNodes();
    loadNodes();
    break;
  case 'update':
    /* ?v=2: everything one flush changed; a job entry is its changed
     * fields (the whole job the first time the stream shows it) */
    for (const e of msg.jobs || []) {
      const prev = state.jobs.get(e.id);
      /* a partial entry for a job this page never had (older than a
       * truncated snapshot): nothing to merge it into */
      if (prev || 'status' in e) setJob(Object.assign({}, prev, e), now);
    }
    for (const id of msg.removed || []) removeJob(id);
    for (const p of msg.pipelines || []) setPipeline(p);
    for (const id of msg.pipelines_removed || []) removePipeline(id);
    if (msg.counts) {
      state.counts = msg.counts;
      countsDirty = true;
    }
    break;
  case 'job':
    setJob(msg.job, now);
    break;
  case 'removed':
    removeJob(msg.id);
    break;
  case 'log':
    detail.onLog(msg);
    return; /* the panel draws it in its own frame */
  case 'pipeline':
    setPipeline(msg.pipeline);
    break;
  case 'pipeline_removed':
    removePipeline(msg.id);
    break;
  case 'counts':
    state.counts = msg.counts;
    countsDirty = true;
    break;
  default:
    return; /* a message type this page does not know: newer daemon */
  }
  schedule();
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdown);
  if (ws) return;
  const url = new URL('/ws/jobs', location.href);
  url.searchParams.set('v', '2'); /* the compact stream: one "update" per flush */
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  if (!wasLive) setConn('connecting', 'connecting…');
  const sock = new WebSocket(url);
  ws = sock;
  let opened = false;
  sock.onopen = () => { opened = true; };
  sock.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    onMessage(msg);
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    snapshotSeen = false;
    lost(opened, e.code);
  };
}

/* The stream is gone (or never opened): say so, then retry with backoff.  A
 * WebSocket handshake refused with 401 looks like any failure to the page,
 * so a failed open is followed by a plain request that shows what it was. */
async function lost(opened, code) {
  const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] * (0.8 + 0.4 * Math.random());
  attempt++;
  retryAt = Date.now() + delay;
  retryTimer = setTimeout(connect, delay);
  if (!opened) {
    const r = await api('GET', '/jobs?limit=0');
    if (r.status === 401) return; /* showUnauthorized has put up its banner */
  }
  const why = code === 1001 ? 'galvanid is shutting down' : code === 1008 ? 'this page fell too far behind' : 'connection lost';
  const tick = () => {
    if (ws) return;
    const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    setConn('retrying', 'reconnecting…');
    banner('disconnected', `Disconnected from galvanid (${why}): reconnecting in ${s} s (attempt ${attempt}). ` +
           'The jobs below show the last state seen.');
  };
  tick();
  clearInterval(countdown);
  countdown = setInterval(tick, 1000);
}

$('banner-retry').addEventListener('click', () => { attempt = 0; connect(); });
$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token-input').value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('token-input').value = '';
  attempt = 0;
  if (ws) ws.close();
  ws = null;
  connect();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.selected && !(e.target instanceof Element && e.target.closest('input, textarea, select'))) select(0);
});

renderCounts();
connect();
