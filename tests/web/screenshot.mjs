/*
 * screenshot.mjs — the picture in docs/dashboard.png: the real galvanid with
 * a few jobs in different states (running with loss/accuracy metrics,
 * paused, queued, succeeded, failed, cancelled) and the training job's
 * charts, in Debian's chromium.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/screenshot.mjs [docs/dashboard.png]
 *
 * Not a test (nothing is asserted beyond the jobs reaching their states); it
 * is run by hand when the dashboard's look changes.
 */
import { join } from 'node:path';
import { Daemon, HERE, freePort, launch, playwright, tempDir, waitFor } from './lib.mjs';

const out = process.argv[2] || join(HERE, '..', '..', 'docs', 'dashboard.png');
const tmp = tempDir('galvani-shot-');
/* A training-like job: 600 steps, a falling loss and a rising accuracy (awk: mawk is in every Debian). */
const TRAIN = `awk 'BEGIN { srand(7); for (i = 1; i <= 600; i++) { ` +
  `printf "::progress %d/600\\n::metric loss %.4f\\n::metric accuracy %.4f\\n", i, ` +
  `2.2*exp(-i/45)+0.12+rand()*0.07, 0.93-0.8*exp(-i/55)-rand()*0.025; ` +
  `if (i % 25 == 0) printf "epoch %d done\\n", i/25; fflush(); system("sleep 0.05") } }'`;
const daemon = new Daemon(process.env.GALVANID || 'galvanid', tmp.dir, await freePort(), ['--max-running', '3']);
let browser;
try {
  await daemon.start();
  const post = async (spec) => (await daemon.request('POST', '/jobs', spec)).json.id;
  const status = async (id) => (await daemon.request('GET', `/jobs/${id}`)).json;
  const ids = {};
  ids.build = await post({ name: 'build', command: 'for i in 1 2 3 4 5; do echo ::progress $((i*20)); sleep 0.1; done', shell: true });
  ids.flaky = await post({ name: 'integration-tests', command: 'echo ::progress 35; sleep 0.4; echo "3 tests failed" >&2; exit 1', shell: true });
  await waitFor(async () => (await status(ids.flaky)).status === 'failed', 'failed job');
  ids.backfill = await post({ name: 'backfill-2025', command: 'for i in $(seq 1 100); do echo ::progress $i; sleep 0.05; done', shell: true });
  await waitFor(async () => (await status(ids.backfill)).progress >= 20, 'backfill progress');
  await daemon.request('POST', `/jobs/${ids.backfill}/cancel`);
  pw: {
    const pw = await playwright();
    browser = await launch(pw);
  }
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  ids.train = await post({ name: 'train-resnet', command: TRAIN, shell: true, params: { lr: 0.05, batch: 64, model: 'resnet18' } });
  ids.etl = await post({ name: 'etl-nightly', command: 'for i in $(seq 1 200); do echo ::progress $i/200; echo "::status table $i"; sleep 0.04; done', shell: true });
  await waitFor(async () => (await status(ids.etl)).progress >= 42, 'etl progress');
  await daemon.request('POST', `/jobs/${ids.etl}/pause`);
  ids.render = await post({ name: 'render-frames', command: 'for i in $(seq 1 400); do echo ::progress $((i/4)); echo "::metric fps $((20 + i % 7))"; sleep 0.1; done', shell: true });
  ids.report = await post({ name: 'weekly-report', command: ['sleep', '1'] });
  await page.locator(`#rows tr[data-id="${ids.train}"] .jname`).click();
  await waitFor(async () => (await status(ids.train)).progress >= 40, 'train progress', 60000);
  await page.waitForTimeout(300);
  await page.screenshot({ path: out });
  console.log('wrote', out);
} finally {
  if (browser) await browser.close();
  await daemon.stop();
  daemon.endLeftoverJobs();
  tmp.cleanup();
}
