/*
 * test_nodes.mjs — which node runs each job, and the nodes of a cluster, on
 * the dashboard, in a real browser (lib.mjs: Debian's chromium,
 * playwright-core, the real galvanid on SQLite).
 *
 *   - one galvanid (GET /nodes lists it alone): the job's panel names its
 *     node; the jobs table has no node column and the Nodes panel is hidden
 *     (they would repeat one name); the page reads GET /nodes again and
 *     again (every few seconds);
 *   - a cluster: GET /nodes as the page sees it gets two more nodes (the
 *     real node's entry as galvanid sent it, plus an "up" node with an
 *     address and a "lost" one: one galvanid on SQLite cannot be three);
 *     within one refresh the Nodes panel lists the three with their state,
 *     heartbeat age (counting on), load and address, this node marked; the
 *     jobs table shows the node column with the job's node; the job's panel
 *     says "(this node)";
 *   - at 375 px the job's card shows its node on screen, nothing scrolls
 *     sideways, and the Nodes panel fits;
 *   - back to one node: the column and the panel go away again.
 *
 * Every wait is for a condition; nothing asserts a time.  Leaves
 * dashboard-nodes-1400.png and dashboard-nodes-375.png (the cluster at both
 * widths) in GALVANI_WEB_ARTIFACTS.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_nodes.mjs
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, DEADLINE_MS, freePort, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 240 s'); process.exit(1); }, 240000);
const ARTIFACTS = process.env.GALVANI_WEB_ARTIFACTS || process.cwd();
const tmp = tempDir('galvani-web-nodes-');
const GATE = join(tmp.dir, 'gate');

let daemon, browser;
const problems = [];

const rowOf = (page, id) => page.locator(`#rows tr[data-id="${id}"]`);
/* The job panel's facts as { name: value }. */
const facts = (page) => page.$$eval('#d-meta dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent,
  dt.nextElementSibling.textContent])));

async function main() {
  const pw = await playwright();
  daemon = new Daemon(GALVANID, tmp.dir, await freePort());
  await daemon.start();
  const real = (await daemon.request('GET', '/nodes')).json.nodes;
  assert.equal(real.length, 1, JSON.stringify(real));
  const self = real[0].id;
  assert.equal(real[0].self, true);

  const created = await daemon.request('POST', '/jobs', {
    name: 'on-a-node', command: `echo ::progress 30; while [ ! -e ${GATE} ]; do sleep 0.05; done`, shell: true,
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  assert.equal(created.json.node, self);

  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  let nodeReads = 0;
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/nodes') nodeReads++; });

  /* ---- one node ---- */
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  const row = rowOf(page, id);
  await row.waitFor();
  await row.locator('.jname').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  await waitFor(async () => (await facts(page)).node === self, `the job's panel to name node ${self}`);
  assert.ok(await page.isHidden('#nodes'), 'the Nodes panel shows a single node');
  assert.ok(await page.isHidden('th.c-node'), 'the node column shows on a single node');
  assert.ok(await row.locator('td.node').isHidden(), "the job's node cell shows on a single node");
  await waitFor(async () => nodeReads >= 2, 'GET /nodes read again (the periodic refresh)');

  /* ---- a cluster of three, as GET /nodes says ---- */
  const others = [
    { id: 'n2', epoch: 3, state: 'up', address: '10.1.2.3:8000', started_at: 1.7e9, heartbeat_age: 1.5,
      lease: 15, max_running: 4, running: 2, self: false },
    { id: 'n3', epoch: 1, state: 'lost', address: '10.1.2.4:8000', started_at: 1.7e9, heartbeat_age: 40,
      lease: 15, max_running: 8, running: 0, self: false },
  ];
  const cluster = async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.nodes.push(...others);
    await route.fulfill({ response: res, json: body });
  };
  await page.route((url) => url.pathname === '/nodes', cluster);
  const panel = page.locator('#nodes');
  await panel.waitFor({ state: 'visible' });
  const nodeRow = (n) => page.locator(`#node-rows tr[data-node="${n}"]`);
  assert.equal(await page.locator('#node-rows tr').count(), 3);
  assert.equal(await page.textContent('#nodes-info'), '2 up of 3');
  const me = nodeRow(self);
  assert.ok(await me.evaluate((tr) => tr.classList.contains('self')), 'this node is not marked');
  assert.match(await me.locator('.nname').textContent(), new RegExp(`^${self.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} · this node$`));
  assert.equal(await me.locator('.n-state .badge').textContent(), 'up');
  assert.equal(await nodeRow('n2').locator('.naddr').textContent(), '10.1.2.3:8000');
  assert.equal(await nodeRow('n2').locator('td.n-load').textContent(), '2/4');
  assert.equal(await nodeRow('n3').locator('.n-state .badge').textContent(), 'lost');
  assert.ok(!(await nodeRow('n2').evaluate((tr) => tr.classList.contains('self'))));
  /* the heartbeat age of an up node counts on between reads; a lost node's is its own */
  const age = async () => Number(/^([\d.]+)s ago$/.exec(await nodeRow('n2').locator('td.n-beat').textContent())?.[1]);
  const first = await age();
  assert.ok(first >= 1.5, `n2's heartbeat: ${first}`);
  await waitFor(async () => (await age()) > first, "n2's heartbeat age to count on");
  assert.equal(await nodeRow('n3').locator('td.n-beat').textContent(), '40s ago');
  assert.ok(!(await nodeRow('n3').locator('td.n-beat').evaluate((td) => td.classList.contains('late'))),
    'a lost node is not "late"');

  /* the node column, and the job's panel */
  await page.locator('th.c-node').waitFor({ state: 'visible' });
  assert.equal(await row.locator('td.node').textContent(), self);
  assert.equal(await row.locator('td.node').getAttribute('title'), `runs on node ${self}`);
  await waitFor(async () => (await facts(page)).node === `${self} (this node)`, 'the panel to say "(this node)"');
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-nodes-1400.png') });

  /* ---- a phone ---- */
  await page.setViewportSize({ width: 375, height: 740 });
  const cell = await row.locator('td.node').boundingBox();
  assert.ok(cell && cell.width > 0 && cell.x >= 0 && cell.x + cell.width <= 375.5,
    `at 375 px the job's node is not on screen: ${JSON.stringify(cell)}`);
  if (self.length <= 14) /* HOST:PORT of a short host name: whole (a longer one may end with "…") */
    assert.ok(await row.locator('td.node').evaluate((td) => td.scrollWidth <= td.clientWidth + 1),
      `at 375 px the job's node "${self}" is cut`);
  for (const sel of ['.jname', '.badge', '.bar']) {
    const b = await row.locator(sel).boundingBox();
    assert.ok(b && b.x >= 0 && b.x + b.width <= 375.5, `at 375 px the job's ${sel} is off screen`);
  }
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(scroll <= 0, `at 375 px the page scrolls sideways by ${scroll} px`);
  const box = await panel.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 375.5, `at 375 px the Nodes panel is off screen: ${JSON.stringify(box)}`);
  for (const n of [self, 'n2', 'n3']) {
    const b = await nodeRow(n).locator('.n-load').boundingBox();
    assert.ok(b && b.x + b.width <= 375.5, `at 375 px node ${n}'s load is off screen`);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-nodes-375.png'), fullPage: true });
  await page.setViewportSize({ width: 1400, height: 900 });

  /* ---- one node again ---- */
  await page.unrouteAll();
  await panel.waitFor({ state: 'hidden' });
  await page.locator('th.c-node').waitFor({ state: 'hidden' });
  await waitFor(async () => (await facts(page)).node === self, 'the panel to name the node alone again');

  writeFileSync(GATE, '');
  await waitFor(async () => (await daemon.request('GET', `/jobs/${id}`)).json.status === 'succeeded', 'the job to end');
  assert.deepEqual(problems, [], 'errors in the page');
}

await runWebTest('test_nodes', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
