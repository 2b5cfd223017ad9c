/*
 * bench_many_jobs.mjs — what the dashboard costs the browser with many jobs
 * moving at once (a measurement, not a test: not registered with CTest).
 *
 * N jobs (default 300) run at once, each printing ::progress and a
 * ::metric every 100 ms for 30 s; the page shows them all, with one of them
 * selected (its charts and log live).  Chromium's own counters (CDP
 * Performance.getMetrics: TaskDuration = main-thread busy time,
 * ScriptDuration, LayoutDuration, RecalcStyleDuration) are read over a 5 s
 * window while every job is running, plus the frames drawn and the messages
 * received in that window.
 *
 *   GALVANID=build/src/daemon/galvanid node tests/web/bench_many_jobs.mjs [N]
 */
import { Daemon, freePort, launch, playwright, tempDir, waitFor } from './lib.mjs';

const N = Number(process.argv[2] || 300);
/* bash's `read -t` waits without forking a sleep per step */
const JOB = 'exec 3<> <(:); for i in $(seq 1 300); do echo "::progress $((i / 3))"; echo "::metric loss $((1000 / i))"; read -t 0.1 -u 3; done';
const tmp = tempDir('galvani-bench-');
const daemon = new Daemon(process.env.GALVANID || 'galvanid', tmp.dir, await freePort(), ['--max-running', String(N)]);
let browser;
try {
  await daemon.start();
  browser = await launch(await playwright());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(daemon.url + '/');
  await page.locator('#conn[data-state="live"]').waitFor();
  await page.evaluate(() => {
    window.__frames = 0;
    window.__msgs = 0;
    const tick = () => { window.__frames++; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    /* count stream messages without touching the app: a second listener on a second socket is not the same;
       instead count row mutations (one per job update that reached the DOM) */
    new MutationObserver((m) => { window.__msgs += m.length; })
      .observe(document.getElementById('rows'), { subtree: true, attributes: true, attributeFilter: ['data-progress'] });
  });
  for (let i = 0; i < N; i++)
    await daemon.request('POST', '/jobs', { command: ['bash', '-c', JOB], name: `job-${i}` });
  await waitFor(async () => (await page.locator('#rows tr[data-status="running"]').count()) === N, 'all running', 60000);
  await page.locator('#rows tr[data-id="1"] .jname').click();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const before = await metrics();
  const c0 = await page.evaluate(() => [window.__frames, window.__msgs]);
  const t0 = Date.now();
  await page.waitForTimeout(5000);
  const after = await metrics();
  const c1 = await page.evaluate(() => [window.__frames, window.__msgs]);
  const secs = (Date.now() - t0) / 1000;
  const d = (k) => (after[k] - before[k]) / secs;
  const running = await page.locator('#rows tr[data-status="running"]').count();
  console.log(`${N} jobs (${running} still running at the end), window ${secs.toFixed(1)} s:`);
  console.log(`  main thread busy ${(d('TaskDuration') * 100).toFixed(1)} % (script ${(d('ScriptDuration') * 100).toFixed(1)} %, ` +
    `layout ${(d('LayoutDuration') * 100).toFixed(1)} %, style ${(d('RecalcStyleDuration') * 100).toFixed(1)} %)`);
  console.log(`  ${((c1[0] - c0[0]) / secs).toFixed(1)} frames/s, ${((c1[1] - c0[1]) / secs).toFixed(0)} row progress updates/s, ` +
    `JS heap ${(after.JSHeapUsedSize / 1048576).toFixed(1)} MiB, ${after.Nodes} DOM nodes`);
} finally {
  if (browser) await browser.close();
  await daemon.stop();
  tmp.cleanup();
}
