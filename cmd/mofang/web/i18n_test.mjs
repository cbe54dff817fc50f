// Tests of the pages' catalogues (src/i18n/*.js) and a scan of the sources
// for user-visible strings left outside them (and for a local variable
// named t, which would hide the catalogue's t() in its scope), run by `node i18n_test.mjs`
// (and by go test: pages_test.go). It exits non-zero on the first failure.
//
// What the scan catches: string and template literals, in every src/*.js
// and src/views/*.js (comments stripped), that hold English words in a
// place people read: an argument of h(...) after its attributes, a
// textContent / placeholder / title / aria-label / label, and the text of
// toast(), banner(), setStage(), sysLine(), finish(), relay(), fail() and
// alert()/confirm(); plus any literal anywhere with two English words and
// a space that starts with a capital ("Hello there"), unless it is a class
// list, a console line or a media query. What it misses: sentences that
// start in lower case outside those places (taken for diagnostics, as
// Error messages), text built from variables or from
// helpers whose names it does not know, single words passed through
// another function, and index.html (its boot line says both languages).
// style.css is checked for generated content with words in it.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import en from './src/i18n/en.js';
import zh from './src/i18n/zh-CN.js';
import { detect, t, catalogues } from './src/i18n/index.js';

const here = path.dirname(new URL(import.meta.url).pathname);

// 1. The same keys, no empty value, the same placeholders.
const ek = Object.keys(en).sort();
const zk = Object.keys(zh).sort();
assert.deepEqual(zk.filter((k) => !(k in en)), [], 'keys in zh-CN.js but not in en.js');
assert.deepEqual(ek.filter((k) => !(k in zh)), [], 'keys in en.js but not in zh-CN.js');
const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
for (const k of ek) {
  for (const [name, cat] of [['en', en], ['zh-CN', zh]]) {
    assert.equal(typeof cat[k], 'string', `${name} ${k}: not a string`);
    assert.ok(cat[k].trim() !== '', `${name} ${k}: empty`);
  }
  assert.deepEqual(ph(zh[k]), ph(en[k]), `${k}: placeholders differ between en and zh-CN`);
}
// Chinese strings are Chinese: every zh value with English words in it
// (beyond names such as OBS, WebRTC, FLV, ffmpeg, HTTP, RTMP) is suspect.
const names = /\b(OBS|WebRTC|FLV|HLS|ffmpeg|HTTP|RTMP|PNG|JPEG|GIF|WebP|MB|ID|Media Source Extensions|UDP|ok)\b|\w+:\/\//g; // names and URL schemes
for (const k of zk) {
  const rest = zh[k].replace(/\{\w+\}/g, '').replace(names, '');
  assert.ok(!/[A-Za-z]{3,}/.test(rest), `zh-CN ${k}: English left in ${JSON.stringify(zh[k])}`);
}

// 2. t() itself and the choice of language.
assert.equal(detect(['zh-CN', 'en']), 'zh-CN');
assert.equal(detect(['zh-TW']), 'zh-CN');
assert.equal(detect(['zh']), 'zh-CN');
assert.equal(detect(['en-US', 'zh-CN']), 'en');
assert.equal(detect(['fr-FR', 'de']), 'en');
assert.equal(detect([]), 'en');
assert.equal(t('room.joined', { who: 'Ann' }), 'Ann joined'); // node has no navigator: English
assert.equal(t('no.such.key'), 'no.such.key');
assert.ok(catalogues['zh-CN'] === zh && catalogues.en === en);

// 3. The sources: every t('key') names a key; no English text outside.
function sources(dir) {
  const out = [];
  for (const e of readdirSync(path.join(here, dir), { withFileTypes: true })) {
    const rel = dir + '/' + e.name;
    if (e.isDirectory() && e.name !== 'i18n' && e.name !== 'public') out.push(...sources(rel));
    else if (e.isFile() && e.name.endsWith('.js')) out.push(rel);
  }
  return out;
}

// strip removes comments, keeping strings (and line numbers) intact.
function strip(src) {
  let out = '';
  for (let i = 0; i < src.length;) {
    const c = src[i];
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const j = src.indexOf('*/', i + 2);
      const end = j < 0 ? src.length : j + 2;
      out += src.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
    } else if (c === '\'' || c === '"' || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && /[=(,:!&|?;{}]\s*$/.test(out.slice(-20))) {
      // a regular expression literal: skip it whole
      let j = i + 1;
      let cls = false;
      while (j < src.length && (cls || src[j] !== '/') && src[j] !== '\n') {
        if (src[j] === '[') cls = true;
        else if (src[j] === ']') cls = false;
        j += src[j] === '\\' ? 2 : 1;
      }
      out += ' '.repeat(j + 1 - i);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// Literals that look like words but are not text for people.
const notText = new Set([
  'video/mp4; codecs=', '(pointer: coarse)', 'picture-in-picture', 'Content-Type', 'Accept-Language',
  'application/json', 'application/sdp',
]);
const english = /[A-Za-z]{2,}/;
const prose = /[A-Za-z]{2,}[,.:;!?…]?\s+[A-Za-z]{2,}/;
const visibleBefore = [
  /(?:textContent|placeholder|title|innerText)\s*=\s*(?:[^;]*[?:]\s*)?$/,
  /(?:placeholder|title|'aria-label'|label|alt):\s*(?:[^,{}]*[?:]\s*)?$/,
  /\b(?:toast|banner|setStage|sysLine|finish|relay|fail|alert|confirm|askPassword|stopLive|lost|retry)\((?:[^()]*,\s*)?(?:[^,()]*[?:]\s*)?$/,
  /\},\s*(?:[^,()]*[?:]\s*)?$/, // h(tag, {attrs}, 'text')
  /\bh\('[a-z0-9]+',\s*\{[^{}]*\},\s*(?:[^()]*,\s*)?$/,
];
const bad = [];
const used = new Set();
for (const file of sources('src')) {
  const text = strip(readFileSync(path.join(here, file), 'utf8'));
  for (const m of text.matchAll(/\bt\('([^']+)'/g)) used.add(m[1]);
  // A local t hides the catalogue's t: a call of t() in its scope breaks.
  if (/import \{[^}]*\bt\b[^}]*\} from/.test(text)) {
    for (const m of text.matchAll(/\b(?:const|let|var)\s+t\b|\(\s*t\s*[,)]\s*=>|[^\w.$]t\s*=>|function\s*\w*\s*\(\s*t\b|\[\s*\w+\s*,\s*t\s*\]/g)) {
      bad.push(`${file}:${text.slice(0, m.index).split('\n').length}: a local t (${m[0].trim()}) hides the catalogue's t()`);
    }
  }
  for (const m of text.matchAll(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g)) {
    let lit = m[0].slice(1, -1);
    if (m[0][0] === '`') lit = lit.replace(/\$\{[^}]*\}/g, ' ');
    if (!english.test(lit) || notText.has(lit.trim())) continue;
    const before = text.slice(Math.max(0, m.index - 160), m.index);
    if (/\bt\($/.test(before) || /\b(?:import|from)\s*$/.test(before)) continue;
    // class lists, console lines and media queries are not for people
    if (/(?:\bclass:\s*|className\s*[+]?=\s*|classList\.\w+\(|console\.\w+\([^)]*|matchMedia\()(?:[^,;]*[?:+]\s*)?$/.test(before)) continue;
    if (/^(?:[a-z][\w.-]*|[A-Z][\w]*\.[\w.]+|#?[\w-]+|[\w-]+(?:\s[\w-]+)*-[\w-]*|mofang[\w:.]*)$/.test(lit.trim()) && !prose.test(lit)) {
      // a key, a method name, a class list, an id: code, unless in a visible place
      if (!/^[A-Z][a-z]/.test(lit.trim())) continue;
    }
    const visible = visibleBefore.some((re) => re.test(before.split('\n').pop()));
    const line = text.slice(0, m.index).split('\n').length;
    // visible: a capital or two words (a lower-case single word there
    // cannot be told from a state or a kind by its look: 'error', 'ok')
    if (visible && (/^[A-Z]/.test(lit.trim()) || prose.test(lit)) || prose.test(lit) && /^\s*[A-Z][a-z]/.test(lit)) {
      bad.push(`${file}:${line}: ${m[0]}`);
    }
  }
}
// CSS draws no words: a generated content with letters would be text
// outside the catalogue (style.css takes it from a data- attribute).
const css = readFileSync(path.join(here, 'src/style.css'), 'utf8');
for (const m of css.matchAll(/content:\s*(["'])([^"']*)\1/g)) {
  if (/[A-Za-z]{2,}/.test(m[2])) bad.push(`src/style.css: content: ${m[0]}`);
}
assert.deepEqual(bad, [], 'user-visible English outside the catalogue:\n' + bad.join('\n'));
const missing = [...used].filter((k) => !(k in en));
assert.deepEqual(missing, [], 't() keys missing from the catalogues');
console.log(`i18n: ${ek.length} keys in en and zh-CN; ${used.size} used by name in the sources`);
