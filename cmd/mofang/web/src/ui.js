// Small DOM helpers: elements from data (never from HTML strings with user
// text in them), icons, avatars, toasts, the connection banner, dialogs
// and copying to the clipboard.

import { formatCount } from './format.js';
import { locales, locale, setLocale, t } from './i18n/index.js';

// h creates an element: h('button', {class: 'x', onclick: fn}, 'text', child).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// Icons: fixed SVG markup of this file, never user text.
const paths = {
  back: '<path d="M15 5l-7 7 7 7" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>',
  eye: '<path d="M12 5C6.5 5 2.7 9.4 1.5 12c1.2 2.6 5 7 10.5 7s9.3-4.4 10.5-7C21.3 9.4 17.5 5 12 5zm0 11.5a4.5 4.5 0 110-9 4.5 4.5 0 010 9zm0-2.5a2 2 0 100-4 2 2 0 000 4z" fill="currentColor"/>',
  lock: '<path d="M7 10V8a5 5 0 0110 0v2h1a1 1 0 011 1v9a1 1 0 01-1 1H6a1 1 0 01-1-1v-9a1 1 0 011-1zm2 0h6V8a3 3 0 00-6 0z" fill="currentColor"/>',
  heart: '<path d="M12 21s-7.5-4.6-10-9.3C.4 8.5 2.3 4 6.4 4c2.3 0 3.9 1.3 5.6 3.3C13.7 5.3 15.3 4 17.6 4c4.1 0 6 4.5 4.4 7.7C19.5 16.4 12 21 12 21z" fill="currentColor"/>',
  gift: '<path d="M4 11h16v10H4zM3 7h18v4H3zM12 7v14M12 7c-1.5-3-5-4-5.5-2S9 7 12 7zm0 0c1.5-3 5-4 5.5-2S15 7 12 7z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>',
  send: '<path d="M3 20l18-8L3 4l2.5 8zm2.5-8H12" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"/>',
  users: '<path d="M9 11a4 4 0 100-8 4 4 0 000 8zm7 0a3 3 0 100-6M2 21c0-4 3-6.5 7-6.5s7 2.5 7 6.5M17 14.5c3 .3 5 2.5 5 6.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/>',
  plus: '<path d="M12 5v14M5 12h14" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/>',
  copy: '<path d="M8 8h11v12H8zM5 16V4h11" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/>',
  volume: '<path d="M4 9h4l5-4v14l-5-4H4zM16 9l5 6m0-6l-5 6" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>',
  tv: '<path d="M3 6h18v12H3zM8 21h8M9 2l3 3 3-3" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>',
  coin: '<circle cx="12" cy="12" r="9" fill="#ffc53d"/><circle cx="12" cy="12" r="6" fill="none" stroke="#d48806" stroke-width="1.6"/>',
  play: '<path d="M8 5v14l11-7z" fill="currentColor"/>',
  expand: '<path d="M4 9V4h5M15 4h5v5M20 15v5h-5M9 20H4v-5" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>',
  shrink: '<path d="M9 4v5H4M20 9h-5V4M15 20v-5h5M4 15h5v5" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>',
  phone: '<path d="M6.6 10.8a15.1 15.1 0 006.6 6.6l2.2-2.2a1 1 0 011-.25 11.4 11.4 0 003.6.57 1 1 0 011 1V20a1 1 0 01-1 1A17 17 0 013 4a1 1 0 011-1h3.5a1 1 0 011 1c0 1.25.2 2.45.57 3.6a1 1 0 01-.25 1z" fill="currentColor"/>',
  phoneOff: '<path d="M12 9c-1.6 0-3.15.25-4.6.72v3.1a1 1 0 01-.56.9 11.5 11.5 0 00-2.66 1.85 1 1 0 01-1.41 0L.29 13.08a1 1 0 010-1.41A16.9 16.9 0 0112 7a16.9 16.9 0 0111.71 4.67 1 1 0 010 1.41l-2.48 2.49a1 1 0 01-1.41 0 11.3 11.3 0 00-2.67-1.85 1 1 0 01-.56-.9v-3.1A15 15 0 0012 9z" fill="currentColor"/>',
  pip: '<path d="M3 5h18v14H3z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M12 11h7v6h-7z" fill="currentColor"/>',
};

export function icon(name, cls = '') {
  const span = document.createElement('span');
  span.className = 'icon ' + cls;
  span.setAttribute('aria-hidden', 'true');
  span.innerHTML = `<svg viewBox="0 0 24 24" width="1em" height="1em">${paths[name] || ''}</svg>`;
  return span;
}

const palette = ['#ff3d6e', '#7c5cff', '#00b2a9', '#ff8a00', '#2f80ed', '#eb5757', '#27ae60', '#9b51e0'];

// avatar shows the user's picture, or their initial on a color of their id.
export function avatar(user, size = 'md') {
  const name = (user && (user.nickname || user.username)) || '?';
  const el = h('span', { class: `avatar avatar-${size}`, title: name });
  el.style.background = palette[Math.abs(Number(user && user.id) || 0) % palette.length];
  const initial = h('span', { class: 'initial' }, [...name][0].toUpperCase());
  el.append(initial);
  if (user && user.avatar && /^(https?:\/\/|\/)/.test(user.avatar)) {
    const img = h('img', { src: user.avatar, alt: '', loading: 'lazy' });
    img.addEventListener('load', () => initial.remove());
    img.addEventListener('error', () => img.remove());
    el.append(img);
  }
  return el;
}

export function nickname(user) {
  return (user && (user.nickname || user.username)) || t('ui.userN', { id: user ? user.id : '' });
}

// toast shows a short message for a few seconds.
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(el);
  setTimeout(() => el.classList.add('out'), 3200);
  setTimeout(() => el.remove(), 3600);
}

// banner shows (or with no message hides) the connection banner.
export function banner(message, kind = 'warn') {
  const el = document.getElementById('banner');
  if (!message) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  el.className = `banner banner-${kind}`;
  el.textContent = message;
  el.hidden = false;
}

// dialog shows a modal built by build(close) and returns a function that
// closes it. onClose runs when the user dismisses it.
export function dialog(build, { onClose, label = t('ui.dialog') } = {}) {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    document.removeEventListener('keydown', onKey);
  };
  const dismiss = () => {
    close();
    if (onClose) onClose();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') dismiss();
  };
  const box = h('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': label });
  const backdrop = h('div', { class: 'backdrop', onclick: (e) => e.target === backdrop && dismiss() }, box);
  box.append(build(close, dismiss));
  document.body.append(backdrop);
  document.addEventListener('keydown', onKey);
  const first = box.querySelector('input, button');
  if (first) first.focus();
  return close;
}

// copy copies text, falling back to a selection copy where the
// Clipboard API is missing (plain http on a LAN address).
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'offscreen', readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

// formatCount: format.js's, in the pages' language.
export { formatCount };

// langSwitch is the language switch (中文 | English) for a page's header:
// the current language pressed; a click changes it (main.js redraws).
export function langSwitch() {
  return h('div', { class: 'lang-switch', id: 'lang-switch', role: 'group', 'aria-label': t('ui.language') },
    locales.map((l) => h('button', {
      type: 'button', class: 'lang-btn', lang: l.id, dataset: { lang: l.id },
      'aria-pressed': String(l.id === locale()), onclick: () => setLocale(l.id),
    }, l.name)));
}
