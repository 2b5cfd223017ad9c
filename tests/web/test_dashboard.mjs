/*
 * test_dashboard.mjs — the dashboard end to end, in a real browser.
 *
 * Debian's chromium, driven by playwright-core, against the real galvanid
 * (GALVANID) on a loopback port with a temporary database.  Through the page
 * only (clicks and typing, like a person): start two jobs from the form, see
 * a bar advance, pause (status "paused" and the bar holds for a second),
 * resume (it advances again), cancel; a spec the daemon refuses shows its
 * 400 message; the selected job's charts have points for progress and for
 * its ::metric; params applied from the editor reach the daemon; the counts
 * match /healthz; then the daemon is stopped and started again and the page
 * shows the disconnected banner, reconnects by itself and takes the new
 * snapshot.  Then with --token: the page without one shows the 401 banner,
 * a wrong token is refused, the right one pasted (or given as /#token=...)
 * works and leaves the address bar.  Before the browser, the static files
 * themselves: bytes, types, cache headers, 304, HEAD, 404/405 JSON.
 *
 * Measured and printed (not asserted beyond sanity): the page weight, the
 * delay from a ::progress line written by the job to the DOM update, and the
 * run time.  Nothing waits a fixed time for something to happen: every wait
 * is for a condition, with a generous deadline, so a busy machine makes the
 * test slower, not red.  A screenshot goes to GALVANI_WEB_ARTIFACTS (default: the
 * current directory).
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_dashboard.mjs
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { Daemon, DEADLINE_MS, HERE, freePort, groupStopped, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const ARTIFACTS = process.env.GALVANI_WEB_ARTIFACTS || process.cwd();
/* A whole-run bound, whatever hangs (generous: it only has to end a hung run). */
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 450 s'); process.exit(1); }, 450000);

const tmp = tempDir('galvani-web-');
const stamps = join(tmp.dir, 'stamps');
/* Job A: 99 steps of 0.15 s, then it waits to be cancelled (it must still be
 * running when the test cancels it, however slow the machine); each step
 * stamps the time (ms) just before its ::progress line, for the latency
 * measurement, and records the step after the line. */
const JOB_A = `i=0; while [ $i -lt 99 ]; do i=$((i+1)); t=$(date +%s%3N); echo "::progress $i"; ` +
  `echo "::metric loss $((1000 / (i + 1)))"; echo "$i $t" >> ${stamps}; sleep 0.15; done; sleep 3600`;
const JOB_B = 'for i in $(seq 1 25); do echo "::progress $((i*4))"; echo "::metric items $i"; sleep 0.1; done';

let daemon, browser;

/* What galvanid serves for the page: each file byte for byte as it is in
 * web/, with its type and cache headers; 304 on a matching ETag; HEAD; the
 * API's JSON 404 and 405 around it. */
async function checkStatic(d) {
  const web = join(HERE, '..', '..', 'web');
  const files = {
    '/': ['index.html', 'text/html; charset=utf-8'], '/index.html': ['index.html', 'text/html; charset=utf-8'],
    '/app.css': ['app.css', 'text/css; charset=utf-8'], '/favicon.svg': ['favicon.svg', 'image/svg+xml'],
  };
  for (const f of ['app.js', 'view.js', 'detail.js', 'pipelines.js', 'chart.js', 'forms.js', 'format.js'])
    files['/' + f] = [f, 'text/javascript; charset=utf-8'];
  for (const [path, [file, type]] of Object.entries(files)) {
    const r = await d.request('GET', path);
    assert.equal(r.status, 200, path);
    assert.equal(r.text, readFileSync(join(web, file), 'utf8'), path + ' differs from web/' + file);
    assert.equal(r.headers.get('content-type'), type, path);
    assert.equal(r.headers.get('cache-control'), 'no-cache', path);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/, path);
    const again = await fetch(d.url + path, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, path + ' with its ETag');
    assert.equal(await again.text(), '');
    const head = await fetch(d.url + path, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(r.text)));
  }
  const page = await d.request('GET', '/');
  assert.match(page.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  const missing = await d.request('GET', '/nope.js');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { error: { code: 'not_found', message: 'no such route: /nope.js (see /openapi.json)' } });
  const post = await d.request('POST', '/');
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  assert.equal(post.json.error.code, 'method_not_allowed');
  /* the page is no way around the DNS-rebinding guard */
  const rebound = await new Promise((resolve, reject) => {
    /* node:http, because fetch does not let a caller choose the Host header */
    const req = http.get({ host: '127.0.0.1', port: d.port, path: '/', headers: { Host: 'evil.example:' + d.port } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(body) }));
    });
    req.on('error', reject);
  });
  assert.equal(rebound.status, 403);
  assert.equal(rebound.json.error.code, 'forbidden_host');
}
const problems = []; /* page errors and console errors that are not expected */
const TOKEN = 'web-test-token-' + process.pid;

async function main() {
  const pw = await playwright();
  const port = await freePort();
  daemon = new Daemon(GALVANID, tmp.dir, port);
  await daemon.start();
  await checkStatic(daemon);
  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  let restarting = false, refusing = false;
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    /* while the daemon is down, chromium logs the refused connections */
    /* ... and the answers the test provokes on purpose */
    if (m.type() === 'error' && !(restarting && /ERR_CONNECTION_REFUSED|WebSocket connection/.test(m.text())) &&
        !(refusing && /status of 400/.test(m.text())))
      problems.push('console: ' + m.text());
  });
  const weights = new Map();
  page.on('response', async (r) => {
    if (r.request().resourceType() !== 'websocket' && !/\/jobs|\/healthz/.test(r.url()))
      weights.set(r.url(), (await r.body().catch(() => Buffer.alloc(0))).length);
  });

  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.locator('#empty').waitFor({ state: 'visible' });
  const pageWeight = [...weights.values()].reduce((a, b) => a + b, 0);

  /* Every progress change of every row, timed in the page. */
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver((muts) => {
      const now = Date.now();
      for (const m of muts) window.__seen.push([Number(m.target.dataset.id), Number(m.target.dataset.progress), now]);
    }).observe(document.getElementById('rows'), { subtree: true, attributes: true, attributeFilter: ['data-progress'] });
  });

  /* A spec the page itself refuses, then one the daemon refuses (name over 200 bytes). */
  await page.uncheck('#nj-shell');
  await page.fill('#nj-command', 'echo "unterminated');
  await page.click('#new-job button[type=submit]');
  await page.locator('#nj-msg.error', { hasText: 'unterminated " quote' }).waitFor();
  await page.check('#nj-shell');
  refusing = true;
  await page.fill('#nj-command', 'true');
  await page.fill('#nj-name', 'x'.repeat(201));
  await page.click('#new-job button[type=submit]');
  await page.locator('#nj-msg.error', { hasText: /^400 invalid_spec: .*name/ }).waitFor();
  refusing = false;
  assert.equal((await daemon.request('GET', '/jobs')).json.total, 0, 'a refused spec created a job');

  /* Job A from the form: shell, name, params as key=value lines. */
  await page.fill('#nj-command', JOB_A);
  await page.fill('#nj-name', 'train');
  await page.fill('#nj-params', 'lr=0.1\nmodel=small');
  await page.click('#new-job button[type=submit]');
  await page.locator('#nj-msg.ok', { hasText: 'started job #1' }).waitFor();
  const a = (await daemon.request('GET', '/jobs/1')).json;
  assert.deepEqual(a.params, { lr: 0.1, model: 'small' });
  assert.equal(a.shell, true);
  assert.equal(a.name, 'train');

  /* Job B: cooperative pause mode, no params. */
  await page.fill('#nj-command', JOB_B);
  await page.fill('#nj-name', 'second');
  await page.fill('#nj-params', '');
  await page.selectOption('#nj-pause', 'cooperative');
  await page.click('#new-job button[type=submit]');
  await page.locator('#nj-msg.ok', { hasText: 'started job #2' }).waitFor();
  assert.equal((await daemon.request('GET', '/jobs/2')).json.pause_mode, 'cooperative');

  const rowA = page.locator('#rows tr[data-id="1"]');
  const progressA = async () => Number(await rowA.getAttribute('data-progress'));
  const statusA = () => rowA.locator('.badge').textContent();

  /* The bar advances. */
  await waitFor(async () => (await progressA()) >= 3, 'job 1 progress >= 3');
  const p0 = await progressA();
  await waitFor(async () => (await progressA()) > p0, 'job 1 to advance');
  assert.equal(await statusA(), 'running');
  assert.match(await rowA.locator('.rate').textContent(), /%\/s/);

  /* Pause: "paused", and the bar holds. */
  await rowA.locator('button[data-act="pause"]').click();
  await rowA.locator('.badge', { hasText: 'paused' }).waitFor();
  assert.equal(await rowA.getAttribute('data-status'), 'paused');
  /* Lines the job wrote just before SIGSTOP may still be in the pipe: wait
   * until the job is really stopped, then until what it wrote has landed
   * (the daemon is at the last step the job recorded and the page shows
   * what the daemon says) -- not "300 ms is enough", which a busy machine
   * disproves.  The job records a step after printing it, so a stop between
   * the two leaves one more line (last + 1) that may land later. */
  const pidA = (await daemon.request('GET', '/jobs/1')).json.pid;
  await waitFor(() => groupStopped(pidA), 'job 1 to be stopped in /proc');
  const last = Math.max(...readFileSync(stamps, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[0])));
  await waitFor(async () => {
    const d = (await daemon.request('GET', '/jobs/1')).json.progress;
    return d >= last && (await progressA()) === d;
  }, 'the lines written before the stop to land');
  let held = await progressA();
  await page.waitForTimeout(1000); /* paused: a second in which nothing may move */
  if (held === last && (await progressA()) === last + 1) held = last + 1; /* that one line, landed late */
  const width = await rowA.locator('.bar > i').evaluate((e) => e.style.transform);
  assert.equal(await progressA(), held, 'the bar moved while paused');
  assert.equal(width, `scaleX(${held / 100})`);
  assert.equal((await daemon.request('GET', '/jobs/1')).json.progress, held);
  assert.equal(await rowA.locator('button[data-act="pause"]').isHidden(), true);

  /* Resume: it advances again. */
  await rowA.locator('button[data-act="resume"]').click();
  await rowA.locator('.badge', { hasText: 'running' }).waitFor();
  await waitFor(async () => (await progressA()) > held + 1, 'job 1 to advance after resume');

  /* The detail panel: charts with points, the log, params. */
  await rowA.locator('.jname').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#d-title'), '#1 train');
  await waitFor(async () => Number(await page.getAttribute('canvas[data-series="progress"]', 'data-points')) >= 5,
    'progress chart points');
  await waitFor(async () => Number(await page.getAttribute('canvas[data-series="loss"]', 'data-points')) >= 5,
    'loss chart points');
  /* this job prints only protocol lines: hidden (and counted) until the toggle shows them */
  await page.locator('#log-info', { hasText: ':: lines hidden' }).waitFor();
  await page.check('#log-protocol');
  await page.locator('#log', { hasText: '::metric loss' }).waitFor();
  await page.uncheck('#log-protocol');
  assert.equal(await page.inputValue('#params-text'), 'lr=0.1\nmodel=small');
  await page.fill('#params-text', 'lr=0.05\nbatch=32');
  await page.click('#params-form button[type=submit]');
  await page.locator('#params-msg.ok').waitFor();
  assert.deepEqual((await daemon.request('GET', '/jobs/1')).json.params, { lr: 0.05, batch: 32 });
  await page.fill('#params-text', 'oops');
  await page.click('#params-form button[type=submit]');
  await page.locator('#params-msg.error', { hasText: 'params line 1: expected key=value' }).waitFor();

  /* Cancel, once enough progress lines were seen for the latency figures. */
  await waitFor(async () => (await progressA()) >= 24, 'job 1 progress >= 24');
  await rowA.locator('button[data-act="cancel"]').click();
  await rowA.locator('.badge', { hasText: 'cancelled' }).waitFor();
  await page.locator('#d-status', { hasText: 'cancelled' }).waitFor();
  /* a second cancel of a finished job: the button is gone, the API says 409 */
  assert.equal(await rowA.locator('button[data-act="cancel"]').isHidden(), true);

  /* B finishes; the counts match the daemon's. */
  await page.locator('#rows tr[data-id="2"] .badge', { hasText: 'succeeded' }).waitFor();
  const chip = (st) => page.textContent(`.chip[data-status="${st}"] b`);
  await waitFor(async () => (await chip('succeeded')) === '1' && (await chip('cancelled')) === '1', 'counts');
  const health = (await daemon.request('GET', '/healthz')).json;
  for (const st of ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'])
    assert.equal(await chip(st), String(health[st]), 'count of ' + st);
  assert.equal(await page.textContent('#count-total'), `total 2 · max running ${health.max_running}`);
  /* the filter chips */
  await page.click('.chip[data-status="succeeded"]');
  assert.equal(await rowA.isVisible(), false);
  assert.equal(await page.locator('#rows tr[data-id="2"]').isVisible(), true);
  await page.click('.chip[data-status="succeeded"]');
  assert.equal(await rowA.isVisible(), true);

  /* Latency: a ::progress line written -> the row's data-progress in the DOM. */
  const seen = await page.evaluate(() => window.__seen);
  const domAt = new Map(seen.filter(([id]) => id === 1).map(([, p, t]) => [p, t]));
  const lat = [];
  for (const line of readFileSync(stamps, 'utf8').trim().split('\n')) {
    const [p, t] = line.split(' ').map(Number);
    if (domAt.has(p) && p !== held) lat.push(domAt.get(p) - t);
  }
  lat.sort((x, y) => x - y);
  /* (how many depends on the machine: a slow one coalesces more steps) */
  assert.ok(lat.length >= 1, 'no progress value of job 1 reached the DOM individually');
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];

  /* The daemon restarts: banner, reconnection, new snapshot. */
  restarting = true;
  assert.equal(await daemon.stop(), 0, 'galvanid exit status');
  await page.locator('#banner', { hasText: 'Disconnected from galvanid' }).waitFor();
  assert.equal(await page.getAttribute('#conn', 'data-state'), 'retrying');
  await daemon.start();
  await page.locator('#banner').waitFor({ state: 'hidden' });
  await page.locator('#conn[data-state="live"]').waitFor();
  restarting = false;
  assert.equal(await statusA(), 'cancelled');
  /* the new daemon's state reaches the page: a job created behind its back */
  const c = await daemon.request('POST', '/jobs', { command: ['true'], name: 'after-restart' });
  assert.equal(c.status, 201);
  await page.locator('#rows tr[data-id="3"] .jname', { hasText: 'after-restart' }).waitFor();

  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'dashboard-test.png');
  await page.screenshot({ path: shot, fullPage: true });
  await page.close();

  /* With a token: the page without one says so; pasting it, or opening
   * /#token=..., works, and the token leaves the address bar.  (These pages'
   * console shows the 401s they provoke: only their page errors count.) */
  assert.equal(await daemon.stop(), 0, 'galvanid exit status');
  daemon = new Daemon(GALVANID, tmp.dir, port, ['--token', TOKEN]);
  await daemon.start();
  const ctx = await browser.newContext();
  const p2 = await ctx.newPage();
  p2.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await p2.goto(daemon.url + '/');
  await p2.locator('#banner[data-kind="auth"]', { hasText: 'galvanid requires a token (401 Unauthorized)' }).waitFor();
  assert.equal(await p2.getAttribute('#conn', 'data-state'), 'unauthorized');
  await p2.fill('#token-input', 'wrong-token');
  await p2.click('#token-form button');
  await p2.locator('#banner[data-kind="auth"]', { hasText: 'galvanid refused the token' }).waitFor();
  await p2.fill('#token-input', TOKEN);
  await p2.click('#token-form button');
  await p2.locator('#conn[data-state="live"]').waitFor();
  await p2.locator('#banner').waitFor({ state: 'hidden' });
  await p2.locator('#rows tr[data-id="3"]').waitFor();
  const p3 = await ctx.newPage();
  await p3.goto(daemon.url + '/#token=' + TOKEN);
  await p3.locator('#conn[data-state="live"]').waitFor();
  assert.equal(await p3.evaluate(() => location.href), daemon.url + '/');
  assert.equal(await p3.evaluate(() => sessionStorage.getItem('galvani.token')), TOKEN);
  /* an action with the token: the form's POST /jobs carries it */
  await p3.fill('#nj-command', 'sleep 30');
  await p3.fill('#nj-name', 'with-token');
  await p3.click('#new-job button[type=submit]');
  await p3.locator('#nj-msg.ok', { hasText: 'started job #4' }).waitFor();
  await p3.locator('#rows tr[data-id="4"] button[data-act="cancel"]').click();
  await p3.locator('#rows tr[data-id="4"] .badge', { hasText: 'cancelled' }).waitFor();
  await ctx.close();

  assert.deepEqual(problems, [], 'errors in the page');
  console.log(`page weight: ${pageWeight} bytes in ${weights.size} files (uncompressed)`);
  console.log(`progress line -> DOM: n=${lat.length} median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${lat[lat.length - 1]} ms`);
  console.log(`screenshot: ${shot}`);
}

await runWebTest('test_dashboard', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
