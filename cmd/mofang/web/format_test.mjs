// Tests of src/format.js, run by `node format_test.mjs` (and by go test:
// pages_test.go). It exits non-zero on the first wrong answer.
import assert from 'node:assert/strict';
import { formatClock, formatCoins, formatCount, formatDateTime, formatDuration, formatNumber, formatSize } from './src/format.js';

const durations = [
  [0, '0:00'], [0.4, '0:00'], [0.5, '0:01'], [59.4, '0:59'], [59.5, '1:00'],
  [119.4, '1:59'], [119.7, '2:00'], [599.5, '10:00'], [3599.4, '59:59'], [3599.5, '1:00:00'],
  [3661, '1:01:01'], [36000 + 59 * 60 + 59.6, '11:00:00'], [-3, '0:00'], [NaN, '0:00'], [undefined, '0:00'], ['12', '0:12'],
];
for (const [s, want] of durations) {
  assert.equal(formatDuration(s), want, `formatDuration(${s})`);
}
for (let s = 0; s < 7300; s += 0.1) {
  assert.match(formatDuration(s), /^(\d+:[0-5]\d|\d+:[0-5]\d:[0-5]\d)$/, `formatDuration(${s})`);
}

const sizes = [
  [0, '0 KB'], [1, '1 KB'], [1536, '2 KB'], [1047551, '1023 KB'], [1048575, '1.0 MB'], [1048576, '1.0 MB'],
  [5 * 1048576, '5.0 MB'], [1073741823, '1.00 GB'], [1073741824, '1.00 GB'], [2.5 * 1073741824, '2.50 GB'], [-5, '0 KB'], [undefined, '0 KB'],
];
for (const [n, want] of sizes) {
  assert.equal(formatSize(n), want, `formatSize(${n})`);
}
console.log(`format: ${durations.length + sizes.length} cases ok`);

// Figures in the pages' two languages (Intl; node has full ICU).
const counts = [
  [0, 'en', '0'], [999, 'en', '999'], [9999, 'en', '9999'], [12345, 'en', '12.3K'], [123456, 'en', '123.5K'],
  [0, 'zh-CN', '0'], [9999, 'zh-CN', '9999'], [12345, 'zh-CN', '1.2万'], [123456789, 'zh-CN', '1.2亿'], [undefined, 'zh-CN', '0'],
];
for (const [n, loc, want] of counts) assert.equal(formatCount(n, loc), want, `formatCount(${n}, ${loc})`);
assert.equal(formatCoins(1234567, 'en'), '1,234,567');
assert.equal(formatCoins(1234567, 'zh-CN'), '1,234,567');
assert.equal(formatNumber('12', 'en'), '12');
const at = Date.UTC(2026, 11, 1, 15, 4);
const opts = { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' };
assert.equal(formatDateTime(at, opts, 'zh-CN'), '2026年12月1日 15:04');
assert.match(formatDateTime(at, opts, 'en'), /^Dec 1, 2026(,| at) 3:04\sPM$/);
assert.equal(formatDateTime(NaN, opts, 'en'), '');
assert.ok(formatClock(at, 'zh-CN').includes(':'));
