// Formatting of figures for people, without the DOM (node tests it:
// format_test.mjs).

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
