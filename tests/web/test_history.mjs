/*
 * test_history.mjs — the dashboard draws a job's whole metric history and
 * its params changes, in a real browser (Debian's chromium, playwright-core)
 * against the real galvanid.
 *
 * A cooperative job reports 40 loss points and waits.  The page opened
 * afterwards saw none of them live, yet the loss chart has all 40 (loaded
 * from GET /jobs/{id}/metrics); after a reload too.  A params change (PATCH,
 * as galvani set does) puts a mark "r1" on the charts of the open page, and
 * the mark is still there after a reload (GET /jobs/{id}/params/history).
 * A change from the page's own params editor makes mark "r2".  The charts
 * say what they drew in data-points and data-marks.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_history.mjs
 */
import assert from 'node:assert/strict';
import { Daemon, DEADLINE_MS, freePort, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 120 s'); process.exit(1); }, 120000);
const tmp = tempDir('galvani-web-history-');
const POINTS = 40;
/* 40 loss points, then wait for commands, acknowledging params by revision. */
const JOB = `fd=$GALVANI_CONTROL_FD; i=0; while [ $i -lt ${POINTS} ]; do i=$((i+1)); ` +
  `echo "metric loss $((1000 - i * 20))" >&$fd; done; echo "progress 50" >&$fd; ` +
  'while read -r cmd rev rest <&$fd; do case "$cmd" in params) echo "ack params $rev" >&$fd ;; ' +
  'cancel) exit 0 ;; esac; done';

let daemon, browser;
const problems = [];

async function openJob(page, id) {
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.locator(`#rows tr[data-id="${id}"] td.id`).click();
  await page.locator('#detail').waitFor({ state: 'visible' });
}

const loss = (page) => page.locator('canvas.chart[data-series="loss"]');

async function chartHas(page, points, marks) {
  await waitFor(async () => {
    const c = loss(page);
    if (await c.count() !== 1) return false;
    return (await c.getAttribute('data-points')) === String(points) && (await c.getAttribute('data-marks')) === marks;
  }, `the loss chart to have ${points} points and marks "${marks}"`);
}

async function main() {
  const pw = await playwright();
  daemon = new Daemon(GALVANID, tmp.dir, await freePort());
  await daemon.start();
  const created = await daemon.request('POST', '/jobs', {
    name: 'history', command: JOB, shell: true, pause_mode: 'cooperative', params: { lr: 0.1 },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  await waitFor(async () => {
    const m = (await daemon.request('GET', `/jobs/${id}/metrics`)).json.metrics;
    return m.loss && m.loss.length === POINTS;
  }, 'the job to report its points');

  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });

  /* Opened after the points were reported: the chart comes from the daemon. */
  await openJob(page, id);
  await chartHas(page, POINTS, '');
  /* A reload no longer loses the chart. */
  await page.reload();
  await openJob(page, id);
  await chartHas(page, POINTS, '');

  /* A params change (as `galvani set` makes it) marks the open charts. */
  const patched = await daemon.request('PATCH', `/jobs/${id}/params`, { lr: 0.05 });
  assert.equal(patched.status, 200, patched.text);
  await chartHas(page, POINTS, '1');
  await page.locator('canvas.chart[data-series="progress"][data-marks="1"]').waitFor();
  await waitFor(async () => (await daemon.request('GET', `/jobs/${id}`)).json.params_applied === 1, 'the ack');

  /* ... and the mark survives a reload. */
  await openJob(page, id);
  await chartHas(page, POINTS, '1');

  /* A change from the page's params editor: mark r2. */
  await page.fill('#params-text', JSON.stringify({ lr: 0.02 }));
  await page.click('#params-form button[type=submit]');
  await page.locator('#params-msg.ok').waitFor();
  await chartHas(page, POINTS, '1,2');
  const h = (await daemon.request('GET', `/jobs/${id}/params/history`)).json;
  assert.deepEqual(h.history.map((e) => [e.revision, e.patch]), [[1, { lr: 0.05 }], [2, { lr: 0.02 }]]);

  await daemon.request('POST', `/jobs/${id}/cancel`);
  assert.deepEqual(problems, [], 'errors in the page');
}

await runWebTest('test_history', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
