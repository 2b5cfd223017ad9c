/*
 * test_cluster.mjs — the dashboard of a real cluster, in a real browser
 * (lib.mjs: Debian's chromium, playwright-core): two galvanid nodes, a and
 * b, one slot each, on a real PostgreSQL this test starts
 * (tests/pg/pgserver.py serve: initdb in a temporary directory, as the
 * postgres user when run as root), the page served by a.
 *
 *   - a job created on a runs on a (its one slot); a second one created on
 *     a runs on b (GET /jobs/ID says "node": "b", on both nodes);
 *   - the Nodes panel lists the two, a marked as this node, b with its
 *     address and both with their load; the jobs table has the node
 *     column, "b" for the second job;
 *   - the second job's panel names node b and its address; its log, which
 *     only b has on its disk, reaches the page served by a (app.js polls
 *     GET /jobs/ID/log?offset=N on a, which relays it to b): the first
 *     lines, then a line the job writes later, each once, in order;
 *   - pause on a's page stops the job on b (b's API says "paused", its
 *     process group is stopped), resume runs it again; both jobs end;
 *   - no page or console error, and both nodes exit 0 on SIGTERM.
 *
 * PostgreSQL that cannot run here is a failure, as for the Python cluster
 * tests (tests/pg/test_pgserver.py): loudly, never a silent skip.  Every
 * wait is for a condition with a deadline; nothing asserts a time.  Leaves
 * dashboard-cluster-1400.png in GALVANI_WEB_ARTIFACTS.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_cluster.mjs
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as absolute } from 'node:path';
import { Daemon, DEADLINE_MS, HERE, freePort, groupStopped, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
/* the nodes run in the temp dir: a relative path is made absolute here */
const GALVANID = (process.env.GALVANID || '').includes('/') ? absolute(process.env.GALVANID)
  : process.env.GALVANID || 'galvanid';
const ARTIFACTS = process.env.GALVANI_WEB_ARTIFACTS || process.cwd();
const PGSERVER = join(HERE, '..', 'pg', 'pgserver.py');
const PYTHON = '/usr/bin/python3'; /* Debian's, as every Python test here */
const LEASE = '3';
const tmp = tempDir('galvani-web-cluster-');
const MORE = join(tmp.dir, 'more'), GATE = join(tmp.dir, 'gate');

let pg = null;
const nodes = {};
let browser;
const problems = [];

/* A whole-run bound, whatever hangs: what runs is killed before exiting
 * (the PostgreSQL of pgserver.py stops by itself when our pipe to it closes). */
const watchdog = setTimeout(() => {
  console.error('FAIL: the test took over 240 s');
  for (const n of Object.values(nodes)) {
    try { n.proc.kill('SIGKILL'); } catch { /* gone */ }
    n.endLeftoverJobs();
  }
  process.exit(1);
}, 240000);

/* ---- PostgreSQL: pgserver.py serve, until its stdin closes ---- */

class Postgres {
  constructor() {
    this.proc = null;
    this.err = '';
    this.info = null;
  }

  /* Resolves with pgserver.py's JSON line ({dsn, databases, dir, log}). */
  start(databases) {
    const args = [PGSERVER, 'serve', ...databases.flatMap((d) => ['--database', d])];
    const proc = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (c) => { this.err += c; });
    proc.stdout.setEncoding('utf8');
    let out = '';
    return new Promise((resolve, reject) => {
      /* initdb and pg_ctl have 60 s each in pgserver.py */
      const timer = setTimeout(() => fail('PostgreSQL did not start in time'), 150000);
      const fail = (msg) => { clearTimeout(timer); reject(new Error(`${msg}:\n${this.err.slice(-3000)}`)); };
      proc.on('error', (e) => fail(`${PYTHON} ${PGSERVER} serve: ${e.message}`));
      proc.on('exit', (code, sig) => fail(`pgserver.py serve exited (${code ?? sig}) before it served`));
      proc.stdout.on('data', (chunk) => {
        out += chunk;
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        const info = JSON.parse(out.slice(0, nl));
        if (info.unavailable) {
          reject(new Error(`PostgreSQL cannot run here: ${info.unavailable}.  As for the Python cluster tests ` +
            '(tests/pg/test_pgserver.py), that is a failure, not a skip: install Debian\'s postgresql (scripts/deps)'));
          return;
        }
        this.info = info;
        resolve(info);
      });
    });
  }

  log() {
    try { return readFileSync(this.info.log, 'utf8'); } catch { return ''; }
  }

  /* Close its stdin (it stops the server and removes its directory); SIGTERM, then SIGKILL, if it lingers. */
  stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc ? proc.exitCode : 0);
    return new Promise((resolve) => {
      const term = setTimeout(() => proc.kill('SIGTERM'), 90000);
      const kill = setTimeout(() => proc.kill('SIGKILL'), 120000);
      proc.on('exit', (code, signal) => { clearTimeout(term); clearTimeout(kill); resolve(code ?? signal); });
      proc.stdin.end();
    });
  }
}

/* One galvanid node (as tests/daemon/e2e/test_cluster.py's Node): the
 * shared database, its own logs, run dir and pid file under tmp.dir. */
class Node extends Daemon {
  constructor(name, dsn, port) {
    super(GALVANID, tmp.dir, port);
    this.name = name;
    this.dsn = dsn;
  }

  args() {
    const base = join(this.dir, this.name);
    return ['--listen', `127.0.0.1:${this.port}`, '--store', this.dsn, '--node-id', this.name, '--lease', LEASE,
      '--log-dir', base + '.logs', '--run-dir', base + '.run', '--pid-file', base + '.pid',
      '--max-running', '1', '--log-level', 'debug'];
  }

  get runDir() { return join(this.dir, this.name + '.run'); }

  logFile(id) { return join(this.dir, this.name + '.logs', `${id}.log`); }

  async job(id) {
    const r = await this.request('GET', `/jobs/${id}`);
    return r.status === 200 ? r.json : null; /* 404 until this node has read the job's row */
  }
}

/* Until `node` shows job `id` in `status` (with its pid when running). */
const jobOn = (node, id, status) => waitFor(async () => {
  const j = await node.job(id);
  return j && j.status === status && (status !== 'running' || j.pid) ? j : null;
}, `job ${id} to be ${status} on node ${node.name}`);

const count = (text, word) => text.split(word).length - 1;

async function main() {
  const pw = await playwright();
  pg = new Postgres();
  const dsn = (await pg.start(['cluster'])).databases.cluster;
  const a = nodes.a = new Node('a', dsn, await freePort());
  const b = nodes.b = new Node('b', dsn, await freePort());
  await a.start();
  await b.start();

  /* ---- the jobs: the first takes a's slot, the second runs on b ---- */
  const first = await a.request('POST', '/jobs', {
    name: 'holds-a', command: `while [ ! -e ${GATE} ]; do sleep 0.05; done`, shell: true,
  });
  assert.equal(first.status, 201, first.text);
  const id1 = first.json.id;
  assert.equal((await jobOn(a, id1, 'running')).node, 'a');
  const second = await a.request('POST', '/jobs', {
    name: 'on-b', shell: true,
    command: `echo line-one; echo line-two; echo "::progress 40"; while [ ! -e ${MORE} ]; do sleep 0.05; done; ` +
      `echo line-three; while [ ! -e ${GATE} ]; do sleep 0.05; done`,
  });
  assert.equal(second.status, 201, second.text);
  const id2 = second.json.id;
  const onB = await jobOn(a, id2, 'running');
  assert.equal(onB.node, 'b', JSON.stringify(onB));
  assert.equal((await jobOn(b, id2, 'running')).node, 'b');
  /* each node has its address in the nodes table (read at its heartbeats) */
  await waitFor(async () => {
    const ns = (await a.request('GET', '/nodes')).json.nodes;
    return JSON.stringify(ns.map((n) => [n.id, n.address, n.state, n.self])) === JSON.stringify([
      ['a', `127.0.0.1:${a.port}`, 'up', true], ['b', `127.0.0.1:${b.port}`, 'up', false]]);
  }, "a's GET /nodes to list a and b, up, with their addresses");

  /* ---- the dashboard served by a ---- */
  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  let logReads = 0;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname !== `/jobs/${id2}/log`) return;
    if (u.host !== `127.0.0.1:${a.port}`) problems.push('the page read the log from ' + r.url());
    logReads++;
  });
  await page.goto(a.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();

  /* the Nodes panel: two real nodes, a is this one */
  const nodeRow = (n) => page.locator(`#node-rows tr[data-node="${n}"]`);
  await page.locator('#nodes').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#node-rows tr').count(), 2);
  assert.equal(await page.textContent('#nodes-info'), '2 up of 2');
  assert.ok(await nodeRow('a').evaluate((tr) => tr.classList.contains('self')), 'node a is not marked as this node');
  assert.equal(await nodeRow('a').locator('.nname').textContent(), 'a · this node');
  assert.ok(!(await nodeRow('b').evaluate((tr) => tr.classList.contains('self'))), 'node b is marked as this node');
  assert.equal(await nodeRow('b').locator('.nname').textContent(), 'b');
  assert.equal(await nodeRow('a').locator('.naddr').textContent(), `127.0.0.1:${a.port}`);
  assert.equal(await nodeRow('b').locator('.naddr').textContent(), `127.0.0.1:${b.port}`);
  for (const n of ['a', 'b']) {
    assert.equal(await nodeRow(n).locator('.n-state .badge').textContent(), 'up');
    /* each runs one job of one slot, as of a heartbeat the page has read */
    await waitFor(async () => (await nodeRow(n).locator('td.n-load').textContent()) === '1/1', `node ${n}'s load 1/1`);
  }

  /* the jobs table: the node column */
  const row1 = page.locator(`#rows tr[data-id="${id1}"]`), row2 = page.locator(`#rows tr[data-id="${id2}"]`);
  await page.locator('th.c-node').waitFor({ state: 'visible' });
  await row2.waitFor();
  assert.equal(await row1.locator('td.node').textContent(), 'a');
  assert.equal(await row2.locator('td.node').textContent(), 'b');
  assert.equal(await row2.locator('.badge').textContent(), 'running');

  /* ---- the second job's panel: its log comes from b's disk through a ---- */
  await row2.locator('.jname').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#d-title'), `#${id2} on-b`);
  const facts = () => page.$$eval('#d-meta dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent,
    dt.nextElementSibling.textContent])));
  await waitFor(async () => (await facts()).node === `b · 127.0.0.1:${b.port}`,
    'the panel to name node b and its address');
  const logText = () => page.textContent('#log');
  await waitFor(async () => /line-one\nline-two\n/.test(await logText()), 'line-one and line-two in the log box');
  assert.ok(logReads >= 1, 'the log reached the page without GET /jobs/ID/log');
  /* the job has written all it writes before MORE, the ::progress line too (hidden: counted) */
  await page.locator('#log-info', { hasText: '1 :: line hidden' }).waitFor();
  /* only b has the file; a answers with b's bytes */
  assert.ok(existsSync(b.logFile(id2)), `b has no ${b.logFile(id2)}`);
  assert.ok(!existsSync(a.logFile(id2)), `a has a log file of b's job: ${a.logFile(id2)}`);
  const viaA = await a.request('GET', `/jobs/${id2}/log`), fromB = await b.request('GET', `/jobs/${id2}/log`);
  assert.equal(viaA.status, 200, viaA.text);
  assert.equal(viaA.text, fromB.text);
  assert.equal(viaA.text, readFileSync(b.logFile(id2), 'utf8'));
  const fromOffset = await a.request('GET', `/jobs/${id2}/log?offset=${'line-one\n'.length}`);
  assert.equal(fromOffset.text, 'line-two\n::progress 40\n', 'a relayed read from an offset');

  /* more output, later: the poll goes on from where it was */
  writeFileSync(MORE, '');
  await waitFor(async () => /line-three/.test(await logText()), 'line-three in the log box');
  /* two more reads after it came: nothing comes twice */
  const reads = logReads;
  await waitFor(async () => logReads >= reads + 2, 'two more reads of the log');
  const shown = await logText();
  assert.equal(shown, 'line-one\nline-two\nline-three\n', 'the log box');
  for (const w of ['line-one', 'line-two', 'line-three'])
    assert.equal(count(shown, w), 1, `${w} in ${JSON.stringify(shown)}`);
  assert.equal(readFileSync(b.logFile(id2), 'utf8'), 'line-one\nline-two\n::progress 40\nline-three\n');
  await page.check('#log-protocol');
  await waitFor(async () => (await logText()) === 'line-one\nline-two\n::progress 40\nline-three\n',
    'the log box with its :: line shown');
  await page.uncheck('#log-protocol');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-cluster-1400.png'), fullPage: true });

  /* ---- pause from a's page, applied by b ---- */
  const pid = (await b.job(id2)).pid;
  await row2.locator('button[data-act="pause"]').click();
  await jobOn(b, id2, 'paused');
  await waitFor(() => groupStopped(pid), "b to stop the job's process group");
  await row2.locator('.badge', { hasText: 'paused' }).waitFor();
  await page.locator('#d-status', { hasText: 'paused' }).waitFor();
  assert.equal((await a.job(id2)).status, 'paused');

  /* resume from the page too, then both jobs end */
  await row2.locator('button[data-act="resume"]').click();
  await jobOn(b, id2, 'running');
  await waitFor(() => !groupStopped(pid), "the job's processes to run again");
  writeFileSync(GATE, '');
  await jobOn(a, id1, 'succeeded');
  await jobOn(b, id2, 'succeeded');
  await row2.locator('.badge', { hasText: 'succeeded' }).waitFor();
  await page.locator('#log-info', { hasText: 'complete' }).waitFor();
  assert.equal(await logText(), 'line-one\nline-two\nline-three\n', 'the log box at the end');

  assert.deepEqual(problems, [], 'errors in the page');
  await browser.close();
  browser = null;
  for (const n of [a, b]) assert.equal(await n.stop(), 0, `node ${n.name}'s exit status:\n${n.log.slice(-3000)}`);
}

tmp.cleanup = ((rm) => async () => {
  if (pg) {
    const rc = await pg.stop();
    if (rc !== 0 && pg.info) throw new Error(`pgserver.py serve exited with ${rc}:\n${pg.err.slice(-3000)}`);
  }
  rm();
})(tmp.cleanup);

await runWebTest('test_cluster', main, () => ({
  daemons: nodes, browser, problems, logs: () => (pg && pg.info ? { "PostgreSQL's log": pg.log() } : {}),
}), tmp, watchdog, t0);
