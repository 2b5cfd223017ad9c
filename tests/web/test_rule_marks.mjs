/*
 * test_rule_marks.mjs — the dashboard shows a job's rule firings, in a real
 * browser (Debian's chromium, playwright-core) against the real galvanid.
 *
 * A job (sleep 60: it stays running) has a rule
 * "params.alert == true" -> notify.  A params change that makes it true
 * fires it: the open page draws a red mark named after the rule on the job's
 * charts (data-events) and a line under its facts (#d-events) with the
 * values that made it true and what the action did.  Back to false and true
 * again: a second firing, a second mark.  Both are still there after a
 * reload (GET /jobs/{id}/events).
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_rule_marks.mjs
 */
import assert from 'node:assert/strict';
import { Daemon, DEADLINE_MS, freePort, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 120 s'); process.exit(1); }, 120000);
const tmp = tempDir('galvani-web-rules-');

let daemon, browser;
const problems = [];

async function openJob(page, id) {
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.locator(`#rows tr[data-id="${id}"] td.id`).click();
  await page.locator('#detail').waitFor({ state: 'visible' });
}

async function firings(page, n) {
  const want = Array(n).fill('alert').join(',');
  await waitFor(async () => {
    const c = page.locator('canvas.chart[data-series="progress"]');
    if (await c.count() !== 1 || (await c.getAttribute('data-events')) !== want) return false;
    return (await page.locator('#d-events li').count()) === n;
  }, `${n} firing(s) on the chart and in the detail`);
}

async function setAlert(id, on) {
  const r = await daemon.request('PATCH', `/jobs/${id}/params`, { alert: on });
  assert.equal(r.status, 200, r.text);
}

async function main() {
  const pw = await playwright();
  daemon = new Daemon(GALVANID, tmp.dir, await freePort());
  await daemon.start();
  const created = await daemon.request('POST', '/jobs', {
    command: ['sleep', '60'], env: { PATH: '/usr/bin:/bin' }, name: 'rules', params: { alert: false },
    rules: [{ name: 'alert', when: 'params.alert == true', then: 'notify' }],
  });
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  assert.equal(created.json.events, 0);

  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });

  await openJob(page, id);
  await firings(page, 0);
  assert.equal(await page.locator('#d-events').isHidden(), true);

  await setAlert(id, true);
  await firings(page, 1);
  const line = await page.locator('#d-events li').first().textContent();
  assert.match(line, /alert notify params\.alert=true → logged/);

  await setAlert(id, false);
  await setAlert(id, true);
  await firings(page, 2);

  await page.reload();
  await openJob(page, id);
  await firings(page, 2);
  const ev = (await daemon.request('GET', `/jobs/${id}/events`)).json.events;
  assert.deepEqual(ev.map((e) => [e.rule, e.outcome]), [['alert', 'logged'], ['alert', 'logged']]);

  await daemon.request('POST', `/jobs/${id}/cancel`);
  assert.deepEqual(problems, [], 'errors in the page');
}

await runWebTest('test_rule_marks', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
