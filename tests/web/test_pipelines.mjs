/*
 * test_pipelines.mjs — the dashboard draws a pipeline's graph with every
 * step's live status and progress, and acts on it, in a real browser
 * (Debian's chromium, playwright-core) against the real galvanid.
 *
 * The pipeline is build → unit and lint in parallel → package.  Each step
 * is a `sh -c` that waits for a file of its own in a control directory
 * (unit then exits with the number written in its file), so the test
 * decides when each step ends and every check waits for a condition on the
 * page, never for time.  Through the page: the pipeline appears in the list
 * once created; its graph has 4 boxes in columns 0, 1, 1, 2 and the edges
 * build→unit, build→lint, unit→package, lint→package; build's ::progress
 * reaches its box and the pipeline's bar; Pause shows it paused (and build's
 * job paused), Resume running; unit and lint go waiting → running; unit
 * fails, package turns skipped and the rule's firing is listed; lint
 * succeeds and the pipeline failed; Retry on unit reruns it (a second job)
 * and package runs, then everything succeeded.  A step box opens its job in the job
 * panel (by click and by keyboard); after a reload the snapshot draws the
 * same graph; Delete removes the pipeline.  A screenshot of the failed
 * pipeline goes to GALVANI_WEB_ARTIFACTS/pipelines-test.png (default: the
 * current directory).
 *
 *   GALVANID=$PWD/build/src/daemon/galvanid node tests/web/test_pipelines.mjs
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, DEADLINE_MS, freePort, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 120 s'); process.exit(1); }, 120000);
const tmp = tempDir('galvani-web-pipelines-');
const CTL = join(tmp.dir, 'ctl');
const ARTIFACTS = process.env.GALVANI_WEB_ARTIFACTS || process.cwd();

let daemon, browser;
const problems = [];

/* Let a step go on: its file appears whole (written aside, then renamed). */
function release(name, text = 'go') {
  writeFileSync(join(CTL, name + '.tmp'), text);
  renameSync(join(CTL, name + '.tmp'), join(CTL, name));
}

const waitFile = (name) => `while [ ! -s "$CTL/${name}" ]; do sleep 0.05; done`;
const step = (name, needs, script) => ({
  name, needs, command: ['sh', '-c', script], env: { PATH: '/usr/bin:/bin', CTL },
});

const PIPELINE = {
  name: 'ci',
  steps: [
    step('build', [], `echo ::progress 10; ${waitFile('build')}; echo ::progress 100`),
    step('unit', ['build'], `${waitFile('unit')}; exit "$(cat "$CTL/unit")"`),
    step('lint', ['build'], `${waitFile('lint')}`),
    step('package', ['unit', 'lint'], `${waitFile('package')}`),
  ],
  rules: [{ name: 'broken', when: 'pipeline.failed_steps >= 1', then: 'notify' }],
};

/* Wait until the graph's steps have these statuses ({name: status}). */
async function statuses(page, want) {
  await page.waitForFunction((w) => Object.entries(w).every(([n, s]) => {
    const g = document.querySelector(`#pl-graph g.pl-step[data-step="${n}"]`);
    return g && g.dataset.status === s;
  }), want, { timeout: DEADLINE_MS }).catch(async (e) => {
    const seen = await page.$$eval('#pl-graph g.pl-step', (gs) => gs.map((g) => `${g.dataset.step}=${g.dataset.status}`));
    throw new Error(`steps ${JSON.stringify(want)} not seen (page shows ${seen.join(' ')}): ${e.message}`);
  });
}

async function pipelineStatus(page, id, status) {
  await page.locator(`#pl-detail[data-id="${id}"][data-status="${status}"]`).waitFor();
  await page.locator(`#pl-list li[data-id="${id}"][data-status="${status}"]`).waitFor();
  assert.equal(await page.locator('#pl-status').textContent(), status);
}

async function openPage(page) {
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
}

async function checkGraph(page) {
  const steps = page.locator('#pl-graph g.pl-step');
  assert.equal(await steps.count(), 4);
  const cols = Object.fromEntries(await steps.evaluateAll((gs) => gs.map((g) => [g.dataset.step, Number(g.dataset.col)])));
  assert.deepEqual(cols, { build: 0, unit: 1, lint: 1, package: 2 });
  const edges = await page.$$eval('#pl-graph path.pl-edge', (ps) => ps.map((p) => `${p.dataset.from}>${p.dataset.to}`).sort());
  assert.deepEqual(edges, ['build>lint', 'build>unit', 'lint>package', 'unit>package']);
  /* drawn as columns: left to right by depth, unit and lint one above the other */
  const box = async (n) => page.locator(`#pl-graph g.pl-step[data-step="${n}"] rect.pl-box`).boundingBox();
  const [b, u, l, p] = [await box('build'), await box('unit'), await box('lint'), await box('package')];
  assert.ok(b.x + b.width < u.x && u.x === l.x && u.x + u.width < p.x, 'columns left to right');
  assert.ok(u.y + u.height <= l.y || l.y + l.height <= u.y, 'unit and lint do not overlap');
  /* every box is a named button */
  const labels = await page.$$eval('#pl-graph .pl-open', (gs) => gs.map((g) => g.getAttribute('role') + ':' + g.getAttribute('aria-label')));
  assert.ok(labels.every((x) => /^button:step \w+: /.test(x)), labels.join(' | '));
}

async function main() {
  const pw = await playwright();
  mkdirSync(CTL);
  daemon = new Daemon(GALVANID, tmp.dir, await freePort());
  await daemon.start();

  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });

  await openPage(page);
  assert.equal(await page.locator('#pipelines').isHidden(), true, 'no pipelines: no section');

  /* created while the page is open: it arrives as a "pipeline" message */
  const created = await daemon.request('POST', '/pipelines', PIPELINE);
  assert.equal(created.status, 201, created.text);
  const id = created.json.id;
  const item = page.locator(`#pl-list li[data-id="${id}"]`);
  await item.waitFor();
  assert.match(await item.textContent(), /ci/);
  await item.locator('button').click();
  assert.equal(await item.locator('button').getAttribute('aria-pressed'), 'true');
  await page.locator(`#pl-detail[data-id="${id}"]`).waitFor();
  await checkGraph(page);

  /* build runs and reports 10 %: its box and the pipeline's bar (10 / 4 steps) */
  await statuses(page, { build: 'running', unit: 'waiting', lint: 'waiting', package: 'waiting' });
  await page.locator('#pl-graph g.pl-step[data-step="build"][data-progress="10"]').waitFor();
  await page.locator(`#pl-list li[data-id="${id}"][data-progress="2.5"]`).waitFor();
  await pipelineStatus(page, id, 'running');

  /* pause from the page: the pipeline is paused, so is its running step */
  assert.equal(await page.locator('#pl-actions button[data-act="resume"]').isHidden(), true);
  await page.locator('#pl-actions button[data-act="pause"]').click();
  await pipelineStatus(page, id, 'paused');
  await statuses(page, { build: 'paused', unit: 'waiting' });
  assert.equal(await page.locator('#pl-actions button[data-act="pause"]').isHidden(), true);
  const paused = await daemon.request('GET', `/pipelines/${id}`);
  assert.equal(paused.json.paused, true);
  await page.locator('#pl-actions button[data-act="resume"]').click();
  await pipelineStatus(page, id, 'running');
  await statuses(page, { build: 'running' });

  /* build ends: unit and lint run (lint: waiting → running, then succeeded below) */
  release('build');
  await statuses(page, { build: 'succeeded', unit: 'running', lint: 'running', package: 'waiting' });
  await page.locator('#pl-graph path.pl-edge[data-from="build"][data-status="succeeded"]').first().waitFor();

  /* a step box opens its job in the job panel: click, and keyboard */
  await page.locator('#pl-graph g.pl-step[data-step="lint"] .pl-open').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  await waitFor(async () => /ci\/lint/.test(await page.locator('#d-title').textContent()), 'the lint job in the panel');
  assert.match(await page.locator('#d-meta').textContent(), new RegExp(`pipeline#${id} step lint`));
  await page.locator('#pl-graph g.pl-step.selected[data-step="lint"]').waitFor();
  await page.locator('#pl-graph g.pl-step[data-step="build"] .pl-open').focus();
  await page.keyboard.press('Enter');
  await waitFor(async () => /ci\/build/.test(await page.locator('#d-title').textContent()), 'the build job in the panel');

  /* unit fails while lint still runs: package is skipped, the rule fires
   * (a rule never acts on a finished pipeline: lint keeps this one running) */
  assert.equal(await page.locator('#pl-graph .pl-retry:visible').count(), 0, 'nothing to retry yet');
  release('unit', '1');
  await statuses(page, { unit: 'failed', package: 'skipped', lint: 'running' });
  await page.locator('#pl-events li').first().waitFor();
  assert.match(await page.locator('#pl-events li').first().textContent(),
    /broken notify pipeline\.failed_steps=1 → logged/);
  release('lint');
  await statuses(page, { unit: 'failed', package: 'skipped', build: 'succeeded', lint: 'succeeded' });
  await pipelineStatus(page, id, 'failed');
  assert.equal(await page.locator('#pl-graph .pl-retry:visible').count(), 1, 'only the failed step offers a retry');
  assert.equal(await page.locator('#pl-actions button[data-act="delete"]').isVisible(), true);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.locator('#pipelines').screenshot({ path: join(ARTIFACTS, 'pipelines-test.png') });

  /* retry from the page: unit runs again (a new job) and passes; package runs */
  release('unit', '0');
  const retry = page.locator('#pl-graph g.pl-step[data-step="unit"] .pl-retry');
  assert.equal(await retry.getAttribute('aria-label'), 'Retry step unit');
  await retry.click();
  await statuses(page, { unit: 'succeeded', package: 'running' });
  await pipelineStatus(page, id, 'running');
  const rerun = (await daemon.request('GET', `/pipelines/${id}`)).json.steps.find((s) => s.name === 'unit');
  assert.equal(rerun.jobs.length, 2, 'unit ran twice');
  assert.equal(rerun.job, rerun.jobs[1]);
  release('package');
  await statuses(page, { build: 'succeeded', unit: 'succeeded', lint: 'succeeded', package: 'succeeded' });
  await pipelineStatus(page, id, 'succeeded');
  await page.locator(`#pl-list li[data-id="${id}"][data-progress="100"]`).waitFor();
  assert.match(await item.textContent(), /4\/4 steps/);

  /* a reload draws it again from the snapshot */
  await page.reload();
  await openPage(page);
  await page.locator(`#pl-list li[data-id="${id}"][data-status="succeeded"] button`).click();
  await checkGraph(page);
  await statuses(page, { build: 'succeeded', unit: 'succeeded', lint: 'succeeded', package: 'succeeded' });
  await page.locator('#pl-events li').first().waitFor(); /* fetched when selected */
  assert.equal(await page.locator('#pl-events li').count(), 1);

  /* delete from the page: gone from the list, the section hides */
  await page.locator('#pl-actions button[data-act="delete"]').click();
  await page.locator('#pipelines').waitFor({ state: 'hidden' });
  assert.equal((await daemon.request('GET', '/pipelines')).json.total, 0);

  assert.deepEqual(problems, [], 'errors in the page');
}

await runWebTest('test_pipelines', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
