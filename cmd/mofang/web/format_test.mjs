// Tests of src/format.js, run by `node format_test.mjs` (and by go test:
// pages_test.go). It exits non-zero on the first wrong answer.
import assert from 'node:assert/strict';
import { formatDuration, formatSize } from './src/format.js';

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
