// Building DOM without innerHTML: every value from the API becomes a text
// node, so nothing it holds can run as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: h('p', {class: 'x'}, 'text', child...). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

let ids = 0;
/** A fresh id for label/aria wiring. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form control: returns [wrapper, control]. */
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  const hintEl = hint ? h('span', {class: 'hint', id: `${id}-hint`}, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return [h('div', {class: 'field'}, h('label', {for: id}, label), control, hintEl), control];
}

/** A <select> of [value, text] pairs. */
export function select(options, value) {
  const el = h('select', {});
  for (const [v, t] of options) el.append(h('option', {value: v, selected: v === value}, t));
  return el;
}

/** A table from column headers and rows of cells (strings or nodes). */
export function table(caption, headers, rows, empty) {
  if (!rows.length) return h('p', {class: 'empty'}, empty || 'Nothing to show.');
  return h('div', {class: 'table-wrap'},
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', {scope: 'col'}, x)))),
      h('tbody', {}, rows.map((r) => h('tr', r.attrs || {}, (r.cells || r).map((c, i) =>
        i === 0 ? h('th', {scope: 'row'}, c) : h('td', {}, c)))))));
}

/** A status word as a pill (text, not colour alone). */
export function pill(status) {
  const cls = {ok: 'ok', active: 'ok', sent: 'ok', done: 'ok', at_risk: 'warn', retrying: 'warn', skipped: 'muted',
    suspended: 'warn', disabled: 'muted', breached: 'bad', failed: 'bad', dead_letter: 'bad', revoked: 'muted'}[status] || 'muted';
  return h('span', {class: `pill ${cls}`}, String(status).replace(/_/g, ' '));
}

/** UTC time as "2026-12-01 14:05 UTC". */
export function when(iso) {
  if (!iso) return '—';
  return `${String(iso).slice(0, 16).replace('T', ' ')} UTC`;
}

/** Bytes as "12.3 MB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A ratio as a percentage with `digits` decimals. */
export function pct(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return '—';
  return `${(Number(x) * 100).toFixed(digits)}%`;
}

/** Runs `fn` over `items`, at most `n` at a time, keeping order. */
export async function mapLimit(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({length: Math.min(n, items.length)}, worker));
  return out;
}

/** Says `message` in the live status region (kind: info | ok | error). */
export function announce(message, kind = 'info') {
  const el = document.getElementById('status');
  el.className = `status ${kind}`;
  el.textContent = message;
}

/**
 * Asks before an action: a modal dialog with `title`, `body` (nodes or
 * text) and a confirm button labelled `ok` (red when `danger`). Resolves true only when the
 * operator confirms; Escape or Cancel resolve false.
 */
export function confirmAction(title, body, ok, danger = false) {
  const dlg = document.getElementById('confirm');
  replace(document.getElementById('confirm-title'), title);
  replace(document.getElementById('confirm-body'), ...[body].flat());
  const okBtn = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  okBtn.textContent = ok;
  okBtn.className = danger ? 'danger' : '';
  return new Promise((resolve) => {
    const done = (v) => {
      okBtn.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dlg.removeEventListener('cancel', no);
      if (dlg.open) dlg.close();
      resolve(v);
    };
    const yes = () => done(true);
    const no = (e) => {
      if (e) e.preventDefault();
      done(false);
    };
    okBtn.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dlg.addEventListener('cancel', no);
    dlg.showModal();
    cancel.focus();
  });
}

/**
 * Reports a failed call: a refused token signs the console out
 * (app.js listens), anything else is said in the status region.
 */
export function reportError(e, doing) {
  if (e && e.status === 401) {
    window.dispatchEvent(new CustomEvent('cairn:unauthorized'));
    return;
  }
  const what = e && e.code ? `${e.message} (${e.code})` : String(e && e.message ? e.message : e);
  announce(doing ? `${doing} failed: ${what}` : what, 'error');
}

/** The page's heading and an optional line under it. */
export function heading(title, sub) {
  return [h('h1', {tabindex: '-1'}, title), sub ? h('p', {class: 'sub'}, sub) : null];
}
