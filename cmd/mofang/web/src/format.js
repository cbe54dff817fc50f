// Formatting of figures for people, without the DOM (node tests it:
// format_test.mjs). Numbers, coins and dates use Intl in the pages'
// language (i18n/index.js), or the locale given.

import { locale } from './i18n/index.js';

// formatDuration shows seconds as m:ss, or h:mm:ss from an hour on. It
// rounds to the second first, so that 119.7 s is 2:00 (never 1:60).
export function formatDuration(seconds) {
  let s = Math.round(Number(seconds) || 0);
  if (s < 0) s = 0;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// formatSize shows a number of bytes in KB below a megabyte, in MB with
// one decimal below a gigabyte, else in GB with two (units of 1024).
export function formatSize(bytes) {
  const n = Math.max(Number(bytes) || 0, 0);
  if (n < 1023.5 * 1024) return `${n > 0 ? Math.max(1, Math.round(n / 1024)) : 0} KB`;
  if (n < 1024 * 1024 * 1024) {
    const mb = n / (1024 * 1024);
    return mb < 1023.95 ? `${mb.toFixed(1)} MB` : '1.00 GB';
  }
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GB`;
}

// formatNumber shows an integer with the locale's digit grouping.
export function formatNumber(n, loc = locale()) {
  return new Intl.NumberFormat(loc, { maximumFractionDigits: 0 }).format(Number(n) || 0);
}

// formatCount shows a count short: as is below 10,000, else compact in
// the locale's way (12.3K, 1.2万).
export function formatCount(n, loc = locale()) {
  n = Number(n) || 0;
  if (Math.abs(n) < 10000) return new Intl.NumberFormat(loc, { useGrouping: false, maximumFractionDigits: 0 }).format(n);
  return new Intl.NumberFormat(loc, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

// formatCoins shows a coin amount in full, grouped for the locale.
export function formatCoins(n, loc = locale()) {
  return formatNumber(n, loc);
}

// formatDateTime shows a time (ms since the epoch, or a Date) with the
// locale's date and time; opts are Intl.DateTimeFormat's.
export function formatDateTime(when, opts = { dateStyle: 'medium', timeStyle: 'short' }, loc = locale()) {
  const d = when instanceof Date ? when : new Date(Number(when));
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(loc, opts).format(d);
}

// formatClock shows only the time of day of when, for the locale.
export function formatClock(when, loc = locale()) {
  return formatDateTime(when, { timeStyle: 'short' }, loc);
}
