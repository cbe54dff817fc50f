// The pages' languages: Simplified Chinese and English. Every string a
// person reads comes from a catalogue (en.js, zh-CN.js: the same keys)
// through t(key, params). The language is the one chosen with the switch
// (remembered in localStorage), else the browser's (navigator.languages:
// zh* → zh-CN, else en). Changing it tells the listeners of onLocale
// (main.js draws the page again). No DOM here but document.lang and
// localStorage, guarded, so node can import it (i18n_test.mjs).

import en from './en.js';
import zhCN from './zh-CN.js';

// catalogues by locale; en is the fallback of a missing key.
export const catalogues = { en, 'zh-CN': zhCN };
// locales in the switch's order, with their own names.
export const locales = [
  { id: 'zh-CN', name: '中文' },
  { id: 'en', name: 'English' },
];

const KEY = 'mofang.lang';
const listeners = new Set();

// detect picks a locale for a browser's languages (navigator.languages).
export function detect(languages) {
  for (const l of languages || []) {
    const tag = String(l).toLowerCase();
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-CN';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'en';
}

function stored() {
  try {
    const v = globalThis.localStorage && localStorage.getItem(KEY);
    return catalogues[v] ? v : '';
  } catch {
    return '';
  }
}

function browserLanguages() {
  const n = globalThis.navigator;
  if (!n) return [];
  return n.languages && n.languages.length ? n.languages : [n.language];
}

let current = stored() || detect(browserLanguages());
setDocumentLang();

function setDocumentLang() {
  if (globalThis.document && document.documentElement) document.documentElement.lang = current;
}

// locale is the language the pages speak now ('zh-CN' or 'en').
export function locale() {
  return current;
}

// setLocale changes the language, remembers it and tells the listeners.
export function setLocale(id) {
  if (!catalogues[id] || id === current) return;
  current = id;
  try {
    localStorage.setItem(KEY, id);
  } catch {
    // private mode: this page load only
  }
  setDocumentLang();
  for (const fn of listeners) fn(id);
}

// onLocale calls fn(locale) on every change; it returns the unsubscribe.
export function onLocale(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// tOr returns the string of key, or fallback when neither the current
// language nor English has the key (a name the server sent that no
// catalogue knows yet).
export function tOr(key, fallback) {
  const s = t(key);
  return s === key ? fallback : s;
}

// t returns the string of key in the current language, with {name}
// placeholders filled from params. A key missing from the language falls
// back to English, a key missing from both shows itself (a bug to see).
export function t(key, params) {
  const s = catalogues[current][key] ?? en[key] ?? key;
  if (!params) return s;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}
