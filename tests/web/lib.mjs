/*
 * lib.mjs — what the dashboard's browser test and the docs screenshot share:
 * playwright-core (installed here with `npm ci` on first use), Debian's
 * chromium, and the real galvanid on a loopback port with a temporary
 * database.
 *
 * The daemon gets a fixed free port rather than port 0 because the test
 * restarts it and the page must find it again at the same address.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const DEADLINE_MS = 30000; /* any single wait (generous: a busy machine is slow, not wrong) */

/* playwright-core, from tests/web/node_modules (npm ci from the lock file when missing). */
export async function playwright() {
  if (!existsSync(join(HERE, 'node_modules', 'playwright-core', 'package.json'))) {
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: HERE, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`npm ci in ${HERE} failed (status ${r.status}): is the npm registry reachable?`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/deps does)`);
  return import(join(HERE, 'node_modules', 'playwright-core', 'index.mjs'));
}

export async function launch(pw) {
  return pw.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: DEADLINE_MS,
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/* One galvanid process.  start() resolves once it logs galvanid.listening. */
export class Daemon {
  constructor(bin, dir, port, extra = []) {
    this.bin = bin;
    this.dir = dir;
    this.port = port;
    this.extra = extra;
    this.log = '';
    this.proc = null;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  /* galvanid's arguments (a cluster node's differ: test_cluster.mjs) */
  args() { return ['--listen', `127.0.0.1:${this.port}`, '--db', join(this.dir, 'galvani.db'), ...this.extra]; }

  /* where its jobs' supervisors keep their pid files */
  get runDir() { return join(this.dir, 'galvani.db.run'); }

  start() {
    const proc = spawn(this.bin, this.args(), { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('galvanid did not start in time')), DEADLINE_MS);
      const fail = (e) => { clearTimeout(timer); reject(new Error(e.message + ':\n' + this.log.slice(-3000))); };
      proc.on('error', fail);
      proc.on('exit', (code, sig) => fail(new Error(`galvanid exited (${code ?? sig}) before listening`)));
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (chunk) => {
        this.log += chunk;
        if (/galvanid\.listening /.test(this.log)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  /* SIGTERM and wait; resolves with the exit code (signal name if killed). */
  stop(sig = 'SIGTERM') {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc ? proc.exitCode : 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), DEADLINE_MS);
      proc.removeAllListeners('exit');
      proc.on('exit', (code, signal) => { clearTimeout(timer); resolve(code ?? signal); });
      proc.kill(sig);
    });
  }

  /* Jobs outlive galvanid under their supervisors (galvani-shim): after
   * stop(), kill the process group of every job a test left behind — each
   * run dir's pid file says "PID START_TICKS", and a group is killed only if
   * /proc still shows that start time (a recycled pid is left alone). */
  endLeftoverJobs() {
    const root = this.runDir;
    if (!existsSync(root)) return;
    for (const d of readdirSync(root)) {
      try {
        const [pid, ticks] = readFileSync(join(root, d, 'pid'), 'utf8').trim().split(/\s+/).map(Number);
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[19]) === ticks) process.kill(-pid, 'SIGKILL');
      } catch { /* no pid file yet, or the job is gone */ }
    }
  }

  async request(method, path, body) {
    const res = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text && /json/.test(res.headers.get('content-type') || '') ? JSON.parse(text) : null };
  }
}

/* Poll `fn` (async) until it returns a truthy value; the value, or throw naming `what`. */
export async function waitFor(fn, what, timeout = DEADLINE_MS) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/* Every process of the group `pgid` is stopped (state T in /proc), as a
 * pause promises; a shell caught in vfork() while its child was stopped shows
 * D, and a zombie Z (as tests/daemon/e2e/test_e2e.py's group_stopped). */
export function groupStopped(pgid) {
  const states = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid) states.push(fields[0]);
  }
  return states.length > 0 && states.includes('T') && states.every((st) => 'TtDZ'.includes(st));
}

/* Run a browser test's main() and report it the same way in every test:
 * on failure the error, the page's problems and the tail of galvanid's log;
 * always close the browser, stop the daemon and end the jobs it left, remove
 * the temp dir.  `state()` returns the test's { daemon, browser, problems }
 * as they are when main() ends (they are assigned while it runs); a test of
 * several galvanid gives { daemons: { name: Daemon } } instead of daemon,
 * and `logs`, a function returning { title: text }, adds what else to show.
 * tmp.cleanup() may be async (it is awaited, after the daemons stopped).
 * Exits the process with 0 or 1. */
export async function runWebTest(name, main, state, tmp, watchdog, t0) {
  let failed = false;
  const daemonsOf = (st) => Object.entries(st.daemons || (st.daemon ? { galvanid: st.daemon } : {}));
  try {
    await main();
  } catch (e) {
    failed = true;
    const st = state();
    console.error('FAIL:', e && e.stack ? e.stack : e);
    if (st.problems.length) console.error('page problems:', st.problems);
    for (const [n, d] of daemonsOf(st)) console.error(`${n === 'galvanid' ? n : 'galvanid ' + n} log (tail):\n` + d.log.slice(-3000));
    for (const [title, text] of Object.entries(st.logs ? st.logs() : {})) console.error(`${title} (tail):\n` + text.slice(-3000));
  } finally {
    const st = state();
    if (st.browser) await st.browser.close().catch(() => {});
    const daemons = daemonsOf(st).map(([, d]) => d);
    await Promise.all(daemons.map((d) => d.stop()));
    for (const d of daemons) d.endLeftoverJobs();
    try { await tmp.cleanup(); } catch (e) { failed = true; console.error('FAIL: cleanup:', e); }
    clearTimeout(watchdog);
  }
  console.log(`${failed ? 'FAIL' : 'PASS'} ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exit(failed ? 1 : 0);
}
