/*
 * forms.js — the "start a job" form and the text forms of params.
 *
 * Params are written either as a JSON object or as key=value lines; a value
 * that parses as JSON (0.1, true, "x", [1,2]) is that value, anything else
 * is a string.  Errors name the line.  The job spec is checked by the daemon:
 * its 4xx answer ({"error":{"code","message"}}) is shown as it is, because
 * it names the bad field.
 */
import { errorText } from './format.js';

const $ = (id) => document.getElementById(id);

export function paramsFromText(text) {
  const src = text.trim();
  if (src === '') return {};
  if (src.startsWith('{')) {
    let v;
    try { v = JSON.parse(src); } catch (e) { throw new Error('params: invalid JSON: ' + e.message); }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('params: JSON must be an object');
    return v;
  }
  const out = {};
  src.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`params line ${i + 1}: expected key=value, got "${line}"`);
    const key = line.slice(0, eq).trim(), val = line.slice(eq + 1).trim();
    let v = val;
    try { v = JSON.parse(val); } catch { v = val; }
    out[key] = v;
  });
  return out;
}

/* A string is written bare unless reading it back would change it ("0.1",
 * "true", " x", a newline): then as JSON, like every other value. */
function bareString(v) {
  if (typeof v !== 'string' || v === '' || v !== v.trim() || v.includes('\n')) return false;
  try { JSON.parse(v); return false; } catch { return true; }
}

export function paramsToText(params) {
  return Object.entries(params).map(([k, v]) => `${k}=${bareString(v) ? v : JSON.stringify(v)}`).join('\n');
}

/* The JSON merge patch that turns `old` into `next`: changed keys, null for removed. */
export function paramsPatch(old, next) {
  const patch = {};
  for (const [k, v] of Object.entries(next))
    if (JSON.stringify(old[k]) !== JSON.stringify(v)) patch[k] = v;
  for (const k of Object.keys(old)) if (!(k in next)) patch[k] = null;
  return patch;
}

/* argv from a command line: a JSON array, or words with '...', "..." and \ quoting. */
export function commandFromText(text) {
  const src = text.trim();
  if (src.startsWith('[')) {
    let v;
    try { v = JSON.parse(src); } catch (e) { throw new Error('command: invalid JSON array: ' + e.message); }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error('command: JSON must be an array of strings');
    return v;
  }
  const argv = [];
  let cur = null, q = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (q) {
      if (c === q) q = '';
      else if (c === '\\' && q === '"' && i + 1 < src.length) cur += src[++i];
      else cur += c;
    } else if (c === '\'' || c === '"') {
      q = c;
      cur = cur ?? '';
    } else if (c === '\\' && i + 1 < src.length) {
      cur = (cur ?? '') + src[++i];
    } else if (/\s/.test(c)) {
      if (cur !== null) argv.push(cur);
      cur = null;
    } else {
      cur = (cur ?? '') + c;
    }
  }
  if (q) throw new Error(`command: unterminated ${q} quote`);
  if (cur !== null) argv.push(cur);
  return argv;
}

export function setupNewJobForm(ctx) {
  const form = $('new-job');
  const msg = $('nj-msg');
  const say = (cls, text) => { msg.className = 'msg ' + cls; msg.textContent = text; };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('nj-command').value;
    const shell = $('nj-shell').checked;
    const spec = {};
    try {
      if (shell) {
        spec.command = text.trim();
        spec.shell = true;
      } else {
        spec.command = commandFromText(text);
      }
      const params = paramsFromText($('nj-params').value);
      if (Object.keys(params).length) spec.params = params;
    } catch (err) {
      say('error', err.message);
      return;
    }
    const name = $('nj-name').value.trim();
    if (name) spec.name = name;
    spec.pause_mode = $('nj-pause').value;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const r = await ctx.api('POST', '/jobs', spec);
    button.disabled = false;
    if (!r.ok) {
      say('error', errorText(r));
      return;
    }
    say('ok', `started job #${r.data.id}`);
    ctx.select(r.data.id, r.data);
  });
}
