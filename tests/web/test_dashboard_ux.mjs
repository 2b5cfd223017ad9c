/*
 * test_dashboard_ux.mjs — the dashboard at every width, its links, filters,
 * log view and themes, in a real browser (lib.mjs: Debian's chromium,
 * playwright-core, the real galvanid).
 *
 *   - 1400 px: a 60-character job name shows far more than 10 characters;
 *   - a job's link: selecting sets #/jobs/ID; back and forward move between
 *     selections; a page loaded (or reloaded) with #/jobs/ID opens it; the
 *     same for #/pipelines/ID;
 *   - the filter box: a word matches names, key=value a label, key= any
 *     value; the time filter hides a job created two days ago (its
 *     created_at moved back in the database while galvanid was stopped);
 *   - the log: protocol lines hidden until the toggle shows them; the three
 *     attempts of a job that failed twice, each under its own heading; the
 *     bytes arrive over the WebSocket ("log" frames after the page's
 *     subscription) and no GET /jobs/{id}/log is ever made;
 *   - 375 x 740 and 420 x 800: no visible header cells overlap, the job's
 *     name, status and bar are on screen, nothing scrolls sideways, the panel
 *     is below the list;
 *   - prefers-color-scheme light and dark: the background is light (dark) and
 *     the text has a contrast of at least 4.5:1 (WCAG AA).
 *
 * Every wait is for a condition; nothing asserts a time.  Leaves
 * dashboard-ux-375.png (the phone layout) in GALVANI_WEB_ARTIFACTS.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/test_dashboard_ux.mjs
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, DEADLINE_MS, freePort, launch, playwright, tempDir, waitFor, runWebTest } from './lib.mjs';

const t0 = Date.now();
const GALVANID = process.env.GALVANID || 'galvanid';
const watchdog = setTimeout(() => { console.error('FAIL: the test took over 240 s'); process.exit(1); }, 240000);
const ARTIFACTS = process.env.GALVANI_WEB_ARTIFACTS || process.cwd();
const tmp = tempDir('galvani-web-ux-');
const gate = (n) => join(tmp.dir, 'gate' + n);
const LONG = 'a-rather-long-job-name-that-the-wide-layout-must-show-mostly'; /* 60 characters */

/* Prints a line, protocol lines, then more of each when the test opens gate 1;
 * runs until gate 2 (or cancel). */
const TALKER = `echo "hello one"; echo "::progress 10"; echo "::metric loss 3"; ` +
  `while [ ! -e ${gate(1)} ]; do sleep 0.05; done; echo "hello two"; echo "::progress 60"; ` +
  `while [ ! -e ${gate(2)} ]; do sleep 0.05; done`;
/* Fails on its first two attempts, succeeds on the third. */
const RETRIER = `n=$(cat ${join(tmp.dir, 'count')} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${join(tmp.dir, 'count')}; ` +
  'echo "attempt-output $n"; echo "::progress $((n*30))"; [ $n -ge 3 ]';

let daemon, browser;
const problems = [];

async function create(spec) {
  const r = await daemon.request('POST', '/jobs', spec);
  assert.equal(r.status, 201, r.text);
  return r.json.id;
}

async function waitStatus(id, status) {
  await waitFor(async () => (await daemon.request('GET', `/jobs/${id}`)).json.status === status, `job ${id} ${status}`);
}

/* WCAG relative luminance and contrast of CSS rgb() colours. */
function luminance(rgb) {
  const [r, g, b] = rgb.match(/[\d.]+/g).slice(0, 3).map(Number).map((c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};

const rowOf = (page, id) => page.locator(`#rows tr[data-id="${id}"]`);
const shownIds = (page) => page.$$eval('#rows tr', (trs) => trs.filter((tr) => tr.offsetParent !== null)
  .map((tr) => Number(tr.dataset.id)));

async function openPage(page, hash = '') {
  await page.goto(daemon.url + '/' + hash);
  await page.locator('#conn[data-state="live"]').waitFor();
}

/* How many characters of an element's text are not cut off (by its own
 * overflow, or its cell's), measured on the text's full rendered width. */
const charsShown = (loc) => loc.evaluate((el) => {
  const cell = el.closest('td').getBoundingClientRect();
  const shown = Math.min(el.clientWidth, cell.width);
  return Math.floor(shown / (el.scrollWidth / el.textContent.length));
});

async function checkWide(page, id) {
  const seen = await charsShown(rowOf(page, id).locator('.jname'));
  assert.ok(seen >= 25, `at 1400 px only ~${seen} characters of the name show`);
}

async function checkNarrow(page, width, height, id) {
  await page.setViewportSize({ width, height });
  const boxes = await page.$$eval('thead th, .top h1, #conn, .chip', (els) => els.map((el) => {
    const b = el.getBoundingClientRect();
    return { what: el.textContent.trim() || el.tagName, x: b.x, y: b.y, w: b.width, h: b.height };
  }).filter((b) => b.w > 0 && b.h > 0));
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const overlap = a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
      assert.ok(!overlap, `at ${width} px "${a.what}" overlaps "${b.what}"`);
    }
  }
  const row = rowOf(page, id);
  for (const sel of ['.jname', '.badge', '.bar']) {
    const b = await row.locator(sel).boundingBox();
    assert.ok(b && b.width > 0 && b.height > 0, `at ${width} px the job's ${sel} is not visible`);
    assert.ok(b.x >= 0 && b.x + b.width <= width + 0.5, `at ${width} px the job's ${sel} is off screen: ${JSON.stringify(b)}`);
  }
  assert.ok((await row.locator('.bar').boundingBox()).width >= width / 2, `at ${width} px the bar is narrow`);
  const text = await charsShown(row.locator('.jname'));
  assert.ok(text >= 12, `at ${width} px only ~${text} characters of the name show`);
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(scroll <= 0, `at ${width} px the page scrolls sideways by ${scroll} px`);
  const pane = await page.locator('.jobs-pane').boundingBox(), panel = await page.locator('#detail').boundingBox();
  assert.ok(panel.y >= pane.y + pane.height - 1, `at ${width} px the panel is not below the list`);
}

async function checkTheme(page, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  const c = await page.evaluate(() => {
    const body = getComputedStyle(document.body), panel = getComputedStyle(document.querySelector('.card'));
    const dim = getComputedStyle(document.querySelector('#log-info'));
    return { bg: body.backgroundColor, text: body.color, panel: panel.backgroundColor, dim: dim.color };
  });
  const bg = luminance(c.bg);
  if (scheme === 'light') assert.ok(bg > 0.8, `light theme background ${c.bg}`);
  else assert.ok(bg < 0.05, `dark theme background ${c.bg}`);
  for (const [fg, back] of [[c.text, c.bg], [c.text, c.panel], [c.dim, c.panel]])
    assert.ok(contrast(fg, back) >= 4.5, `${scheme}: ${fg} on ${back} has contrast ${contrast(fg, back).toFixed(2)}`);
}

async function main() {
  const pw = await playwright();
  daemon = new Daemon(GALVANID, tmp.dir, await freePort());
  await daemon.start();

  /* A job created "two days ago": created now, moved back in the database
   * while galvanid is stopped. */
  const old = await create({ name: 'old-job', command: ['true'] });
  await waitStatus(old, 'succeeded');
  await daemon.stop();
  const sql = spawnSync('/usr/bin/python3', ['-c',
    'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); ' +
    'db.execute("UPDATE jobs SET created_at = created_at - 172800, started_at = started_at - 172800, ' +
    'finished_at = finished_at - 172800 WHERE id = ?", (int(sys.argv[2]),)); db.commit()',
    join(tmp.dir, 'galvani.db'), String(old)], { encoding: 'utf8' });
  assert.equal(sql.status, 0, sql.stderr);
  await daemon.start();
  /* fetch may first try a kept-alive connection to the stopped daemon */
  await waitFor(async () => {
    try { return (await daemon.request('GET', '/healthz')).status === 200; } catch { return false; }
  }, 'galvanid to answer after its restart');

  const talker = await create({ name: LONG, command: TALKER, shell: true, labels: { team: 'payments', env: 'prod' } });
  const short = await create({ name: 'short', command: ['true'], labels: { team: 'search' } });
  const retrier = await create({ name: 'retrier', command: RETRIER, shell: true, max_retries: 2, retry_backoff: 0.1 });
  const pl = await daemon.request('POST', '/pipelines', { name: 'linked', steps: [{ name: 'only', command: ['true'] }] });
  assert.equal(pl.status, 201, pl.text);
  await waitStatus(retrier, 'succeeded');
  await waitStatus(short, 'succeeded');

  browser = await launch(pw);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(DEADLINE_MS);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  const logRequests = [], sent = [], received = [];
  page.on('request', (r) => { if (/\/jobs\/\d+\/log/.test(r.url())) logRequests.push(r.url()); });
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => { if (/"type":"log"/.test(f.payload)) sent.push(JSON.parse(f.payload)); });
    ws.on('framereceived', (f) => { if (/^\{"type":"log"/.test(f.payload)) received.push(JSON.parse(f.payload)); });
  });

  /* ---- wide ---- */
  await openPage(page);
  await rowOf(page, talker).waitFor();
  await checkWide(page, talker);

  /* ---- the log of the talker, over the WebSocket ---- */
  await rowOf(page, talker).locator('.jname').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  assert.equal(new URL(page.url()).hash, `#/jobs/${talker}`);
  await page.locator('#log', { hasText: 'hello one' }).waitFor();
  assert.ok(!(await page.textContent('#log')).includes('::'), 'protocol lines shown by default');
  await page.locator('#log-info', { hasText: ':: lines hidden' }).waitFor();
  await page.check('#log-protocol');
  await page.locator('#log', { hasText: '::metric loss 3' }).waitFor();
  await page.uncheck('#log-protocol');
  await waitFor(async () => !(await page.textContent('#log')).includes('::'), 'the protocol lines to hide again');
  writeFileSync(gate(1), '');
  await page.locator('#log', { hasText: 'hello two' }).waitFor();
  assert.ok(sent.some((m) => m.job === talker), 'the page never subscribed to the log: ' + JSON.stringify(sent));
  assert.ok(received.some((m) => m.job === talker && m.data.includes('hello two')), 'no log frame brought "hello two"');

  /* ---- the retried job: three attempts, each under its heading ---- */
  await rowOf(page, retrier).locator('.jname').click();
  assert.equal(new URL(page.url()).hash, `#/jobs/${retrier}`);
  await waitFor(async () => (await page.locator('#log .attempt').count()) === 3, 'three attempts in the log');
  for (let n = 1; n <= 3; n++) {
    const a = page.locator(`#log .attempt[data-attempt="${n}"]`);
    assert.match(await a.locator('.attempt-head').textContent(), new RegExp(`^attempt ${n}`));
    assert.ok((await a.textContent()).includes(`attempt-output ${n}`), `attempt ${n}'s output under its heading`);
    assert.ok(!(await a.textContent()).includes(`attempt-output ${n === 3 ? 1 : n + 1}`), `attempt ${n} has only its output`);
  }
  assert.ok(!(await page.textContent('#log')).includes('[galvani: attempt'), 'the marker lines themselves are not shown');

  /* ---- back / forward / reload / a shared link ---- */
  await page.goBack();
  await waitFor(async () => (await page.textContent('#d-title')).startsWith(`#${talker} `), 'back to the talker');
  assert.equal(new URL(page.url()).hash, `#/jobs/${talker}`);
  await page.goForward();
  await waitFor(async () => (await page.textContent('#d-title')).startsWith(`#${retrier} `), 'forward to the retrier');
  await page.reload();
  await page.locator('#conn[data-state="live"]').waitFor();
  await waitFor(async () => (await page.textContent('#d-title')).startsWith(`#${retrier} `), 'the retrier after a reload');
  assert.ok(await rowOf(page, retrier).evaluate((tr) => tr.classList.contains('selected')));
  const other = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  other.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await openPage(other, `#/jobs/${short}`);
  await waitFor(async () => (await other.textContent('#d-title')) === `#${short} short`, 'the shared job link');
  await openPage(other, `#/pipelines/${pl.json.id}`);
  await other.locator('#pl-detail').waitFor({ state: 'visible' });
  assert.equal(await other.textContent('#pl-title'), `#${pl.json.id} linked`);
  await other.close();
  await page.keyboard.press('Escape');
  await waitFor(async () => await page.isHidden('#detail'), 'the panel to close');
  assert.equal(new URL(page.url()).hash, '');

  /* ---- search and time filter ---- */
  const all = (await daemon.request('GET', '/jobs')).json.jobs.map((j) => j.id).sort(); /* with the pipeline's step */
  const recent = all.filter((id) => id !== old);
  assert.deepEqual((await shownIds(page)).sort(), all);
  const filter = async (text, since, want, what) => {
    await page.fill('#search', text);
    await page.selectOption('#since', String(since));
    await waitFor(async () => JSON.stringify((await shownIds(page)).sort()) === JSON.stringify(want.sort()),
      `${what}: jobs ${want} shown (got ${await shownIds(page)})`);
  };
  await filter('rather-long', 0, [talker], 'a name');
  await filter('RETR', 0, [retrier], 'a name, any case');
  await filter('team=payments', 0, [talker], 'a label');
  await filter('team=', 0, [talker, short], 'any value of a label');
  await filter('env=prod team=payments', 0, [talker], 'two labels');
  await filter('team=payments short', 0, [], 'a label and a name that do not go together');
  assert.ok(await page.isVisible('#no-match'));
  await filter('', 3600, recent, 'the last hour');
  await filter('', 86400, recent, 'the last day');
  await filter('', 604800, all, 'the last week');
  await filter('job', 3600, [talker], 'a name in the last hour (old-job is older)');
  await filter('', 0, all, 'no filter');

  /* ---- themes ---- */
  await rowOf(page, talker).locator('.jname').click();
  await page.locator('#log', { hasText: 'hello two' }).waitFor();
  await checkTheme(page, 'light');
  await checkTheme(page, 'dark');

  /* ---- phones ---- */
  await checkNarrow(page, 375, 740, talker);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-ux-375.png'), fullPage: true });
  await checkNarrow(page, 420, 800, talker);

  assert.deepEqual(logRequests, [], 'the page polled the log');
  writeFileSync(gate(2), '');
  await waitStatus(talker, 'succeeded');
  assert.deepEqual(problems, [], 'errors in the page');
}

await runWebTest('test_dashboard_ux', main, () => ({ daemon, browser, problems }), tmp, watchdog, t0);
