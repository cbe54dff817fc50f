// Log in or register: User.login / User.register, then back to where the
// user was going.

import { call, session } from '../api.js';
import { h, langSwitch } from '../ui.js';
import { t } from '../i18n/index.js';

export function loginView(root, { message, go }) {
  let mode = 'login';
  const error = h('p', { class: 'form-error', id: 'login-error', role: 'alert' }, message || '');
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, minlength: 1, maxlength: 32, placeholder: t('login.userName') });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, placeholder: t('login.password') });
  const nick = h('input', { id: 'nickname', name: 'nickname', autocomplete: 'nickname', maxlength: 32, placeholder: t('login.nicknamePlaceholder') });
  const nickRow = h('label', { class: 'field', hidden: true }, h('span', {}, t('login.nickname')), nick);
  const submit = h('button', { class: 'btn btn-primary btn-block', type: 'submit', id: 'login-submit' }, t('login.logIn'));
  const tabLogin = h('button', { type: 'button', class: 'tab active', id: 'tab-login', onclick: () => setMode('login') }, t('login.logIn'));
  const tabRegister = h('button', { type: 'button', class: 'tab', id: 'tab-register', onclick: () => setMode('register') }, t('login.register'));

  function setMode(m) {
    mode = m;
    tabLogin.classList.toggle('active', m === 'login');
    tabRegister.classList.toggle('active', m === 'register');
    nickRow.hidden = m !== 'register';
    password.autocomplete = m === 'register' ? 'new-password' : 'current-password';
    submit.textContent = m === 'register' ? t('login.createAccount') : t('login.logIn');
    error.textContent = '';
  }

  const form = h('form', { class: 'card form', id: 'login-form', novalidate: true },
    h('div', { class: 'tabs' }, tabLogin, tabRegister),
    h('label', { class: 'field' }, h('span', {}, t('login.userName')), username),
    h('label', { class: 'field' }, h('span', {}, t('login.password')), password),
    nickRow,
    error,
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!username.value.trim() || !password.value) {
      error.textContent = t('login.needBoth');
      return;
    }
    submit.disabled = true;
    try {
      const params = { username: username.value.trim(), password: password.value };
      if (mode === 'register' && nick.value.trim()) params.nickname = nick.value.trim();
      const r = await call(mode === 'register' ? 'User.register' : 'User.login', params, { auth: false });
      session.save(r.data);
      const next = sessionStorage.getItem('mofang.next');
      sessionStorage.removeItem('mofang.next');
      go(next && next !== '/login' ? next : '/rooms');
    } catch (err) {
      error.textContent = err.errno === 1001 && err.serverMessage ? err.serverMessage : err.message;
    } finally {
      submit.disabled = false;
    }
  });

  root.append(
    h('div', { class: 'page page-login' },
      langSwitch(),
      h('div', { class: 'brand' }, h('div', { class: 'logo' }, 'M'), h('h1', {}, t('login.brand')), h('p', { class: 'muted' }, t('login.tagline'))),
      form,
    ),
  );
  username.focus();
}
