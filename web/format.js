/*
 * format.js — what every part of the dashboard shares: the statuses and how
 * numbers, durations, times and API errors are written for people.
 */
export const STATUSES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];
export const ACTIVE = new Set(['queued', 'running', 'paused']);

/* 4 significant digits, no exponent below 1e6: 0.3124, 12.35, 1234. */
export function fmtNum(v) {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return v.toExponential(2);
  if (a >= 1000) return String(Math.round(v));
  return String(+v.toPrecision(4));
}

/* Seconds as "42s", "3m05s", "1h02m". */
export function fmtDur(s) {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 10) return (Math.round(s * 10) / 10) + 's';
  s = Math.round(s);
  if (s < 60) return s + 's';
  const pad = (n) => String(n).padStart(2, '0');
  if (s < 3600) return Math.floor(s / 60) + 'm' + pad(s % 60) + 's';
  return Math.floor(s / 3600) + 'h' + pad(Math.floor((s % 3600) / 60)) + 'm';
}

/* An ISO time as local HH:MM:SS today, "Mon D HH:MM" otherwise. */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const now = new Date();
  const hms = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  if (d.toDateString() === now.toDateString()) return hms;
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + hms.slice(0, 5);
}

/* A failed api() result as one line: "400 invalid_spec: unknown field ...". */
export function errorText(r) {
  const e = r.error || {};
  return (r.status ? r.status + ' ' : '') + (e.code ? e.code + ': ' : '') + (e.message || 'request failed');
}
