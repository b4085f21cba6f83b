// The console's shell: sign-in, hash routing (#/tenants, #/slo/<tenant>,
// #/outbox, #/audit, #/alerts) and sign-out.

import * as api from './api.js';
import {announce, h, replace, reportError} from './dom.js';
import {renderTenants} from './tenants.js';
import {renderSlo} from './slo.js';
import {renderOutbox} from './outbox.js';
import {renderAudit} from './audit.js';
import {renderAlerts} from './alerts.js';

const PAGES = {tenants: renderTenants, slo: renderSlo, outbox: renderOutbox, audit: renderAudit, alerts: renderAlerts};
const $ = (id) => document.getElementById(id);

/** `#/page/arg?k=v` as {page, args, params}. */
function route() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return {page: parts[0] || 'tenants', args: parts.slice(1), params: new URLSearchParams(q)};
}

let generation = 0;

/** Shows the page the hash names; `message` (else nothing) goes in the status line. */
async function render(message) {
  if (!api.signedIn()) return;
  announce(message || '', message ? 'ok' : 'info');
  const r = route();
  const page = PAGES[r.page];
  for (const a of $('nav').querySelectorAll('a')) {
    const target = a.getAttribute('href').slice(2);
    const current = target === r.page || (r.page === 'slo' && target === 'tenants');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = $('view');
  const gen = ++generation;
  view.setAttribute('aria-busy', 'true');
  replace(view, h('p', {class: 'loading'}, 'Loading…'));
  try {
    const content = page
      ? await page(r)
      : [h('h1', {tabindex: '-1'}, 'Not found'), h('p', {}, 'No such page. ', h('a', {href: '#/tenants'}, 'Tenants'))];
    if (gen !== generation || !api.signedIn()) return;
    replace(view, content);
    const h1 = view.querySelector('h1');
    if (h1) {
      document.title = `${h1.textContent} · Cairn console`;
      h1.focus();
    }
  } catch (e) {
    if (gen !== generation) return;
    replace(view, h('h1', {tabindex: '-1'}, 'Could not load this page'),
      h('p', {}, e && e.message ? e.message : String(e)));
    reportError(e, 'Loading the page');
  } finally {
    if (gen === generation) view.removeAttribute('aria-busy');
  }
}

function showSignedIn(yes) {
  $('sign-in').hidden = yes;
  $('view').hidden = !yes;
  $('nav').hidden = !yes;
  $('sign-out').hidden = !yes;
}

function signOut(message, kind) {
  api.signOut();
  generation += 1;
  replace($('view'));
  showSignedIn(false);
  document.title = 'Cairn operator console';
  announce(message, kind);
  $('token').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('token');
  const t = input.value.trim();
  if (!t) {
    announce('Enter the admin token.', 'error');
    input.focus();
    return;
  }
  const button = $('sign-in-button');
  button.disabled = true;
  api.signIn(t);
  try {
    await api.get('tiers');
    input.value = '';
    showSignedIn(true);
    if (!window.location.hash || window.location.hash === '#') window.history.replaceState(null, '', '#/tenants');
    render('Signed in.');
  } catch (e) {
    api.signOut();
    const msg = e.status === 401 ? 'The server refused this token.'
      : e.code === 'admin_not_configured' ? 'This server has no admin token configured (start it with --admin-token).'
        : `Sign-in failed: ${e.message}`;
    announce(msg, 'error');
    input.select();
  } finally {
    button.disabled = false;
  }
}

$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', () => signOut('Signed out: the token is forgotten.', 'ok'));
window.addEventListener('cairn:unauthorized', () =>
  signOut('The server refused the admin token (changed or revoked?): signed out.', 'error'));
window.addEventListener('hashchange', () => render());
// A page's action done: show the page again with what happened.
window.addEventListener('cairn:rerender', (e) => render(e.detail));
showSignedIn(false);
