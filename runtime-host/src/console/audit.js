// The audit log (GET audit-events, newest first) and the hash chain's
// verification (POST audit-events/verify: read-only, recomputes every
// event's hash and names the first broken link).

import * as api from './api.js';
import {announce, field, h, heading, replace, reportError, table, when} from './dom.js';

const PAGE = 50;
const ACTIONS = ['tenant.upsert', 'project.upsert', 'api_key.create', 'api_key.revoke', 'api_key.rotate',
  'tenant_quota.upsert', 'tenant_quota.delete', 'alert_route.create', 'alert_route.status', 'outbox.replay',
  'outbox.replay.preview', 'release.evidence', 'tenant.provision', 'tenant.upgrade', 'tenant.teardown'];

function chainStatus(v) {
  if (v.ok) {
    return h('p', {class: 'callout ok', id: 'chain-status'},
      `Chain verified: ${v.checked} event${v.checked === 1 ? '' : 's'}, each hash recomputed and linked to the one before.`,
      v.head ? h('span', {class: 'block hint'}, 'Head: ', h('code', {}, v.head)) : null);
  }
  const b = v.first_broken || {};
  return h('p', {class: 'callout bad', id: 'chain-status'},
    `Chain broken at event ${b.event_id} (sequence ${b.seq}): ${b.reason}. ${v.checked} event(s) before it verified.`);
}

/** A line of an event's plain details (`replayed_count: 1, dry_run: false`). */
function facts(details) {
  const first = ['reason', 'dry_run', 'replayed_count', 'candidate_count', 'status', 'channel', 'label', 'key_prefix', 'tier'];
  const rank = (k) => (first.includes(k) ? first.indexOf(k) : first.length);
  return Object.entries(details || {}).filter(([, v]) => v !== null && typeof v !== 'object')
    .sort(([a], [b]) => rank(a) - rank(b)).slice(0, 4).map(([k, v]) => `${k}: ${v}`).join(', ');
}

export async function renderAudit(r) {
  const tenant = r.params.get('tenant') || '';
  const action = r.params.get('action') || '';
  const offset = Math.max(0, Number(r.params.get('offset')) || 0);
  const [list, verify] = await Promise.all([
    api.get('audit-events', {tenant_id: tenant, action, limit: PAGE, offset}),
    api.post('audit-events/verify'),
  ]);
  const link = (o) => {
    const q = new URLSearchParams();
    if (tenant) q.set('tenant', tenant);
    if (action) q.set('action', action);
    if (o) q.set('offset', String(o));
    const s = q.toString();
    return `#/audit${s ? `?${s}` : ''}`;
  };

  const [tenantField, tenantInput] = field('Tenant', h('input', {type: 'text', value: tenant, id: 'audit-tenant', spellcheck: 'false'}));
  const [actionField, actionInput] = field('Action',
    h('input', {type: 'text', value: action, id: 'audit-action', list: 'audit-actions', spellcheck: 'false'}));
  const apply = h('button', {type: 'button', id: 'audit-apply'}, 'Filter');
  const go = () => {
    const q = new URLSearchParams();
    if (tenantInput.value.trim()) q.set('tenant', tenantInput.value.trim());
    if (actionInput.value.trim()) q.set('action', actionInput.value.trim());
    const s = q.toString();
    window.location.hash = `#/audit${s ? `?${s}` : ''}`;
  };
  apply.addEventListener('click', go);
  for (const el of [tenantInput, actionInput]) el.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });

  const status = h('div', {id: 'chain'}, chainStatus(verify));
  const again = h('button', {type: 'button', class: 'secondary', id: 'verify-again'}, 'Verify again');
  again.addEventListener('click', async () => {
    again.disabled = true;
    try {
      const v = await api.post('audit-events/verify');
      replace(status, chainStatus(v));
      announce(v.ok ? `Audit chain verified: ${v.checked} events.` : 'The audit chain is broken.', v.ok ? 'ok' : 'error');
    } catch (e) {
      reportError(e, 'Verifying the chain');
    } finally {
      again.disabled = false;
    }
  });

  const rows = list.events.map((e) => ({attrs: {'data-action': e.action, 'data-event': e.event_id}, cells: [
    when(e.created_at), h('code', {}, e.action), e.actor, e.tenant_id || '—', `${e.resource_type}: ${e.resource_id}`,
    e.request_id ? h('code', {}, e.request_id) : '—',
    h('div', {}, h('span', {class: 'audit-facts'}, facts(e.details)),
      h('details', {}, h('summary', {}, 'All details'), h('pre', {}, JSON.stringify(e.details, null, 2))))]}));

  return [
    ...heading('Audit log', 'Every admin mutation, newest first. Events are hash-chained: rewriting or dropping one breaks the chain.'),
    h('section', {'aria-labelledby': 'chain-h', class: 'panel'}, h('h2', {id: 'chain-h'}, 'Chain verification'), status, again),
    h('datalist', {id: 'audit-actions'}, ACTIONS.map((a) => h('option', {value: a}))),
    h('div', {class: 'toolbar', role: 'search', 'aria-label': 'Filter audit events'}, tenantField, actionField, apply),
    table(`Audit events${tenant ? ` of ${tenant}` : ''}${action ? `, action ${action}` : ''}`,
      ['When', 'Action', 'Actor', 'Tenant', 'Resource', 'Request id', 'Details'], rows, 'No audit events match.'),
    h('nav', {class: 'pager', 'aria-label': 'Audit pages'},
      offset > 0 ? h('a', {href: link(Math.max(0, offset - PAGE))}, '← Newer') : null,
      list.events.length === PAGE ? h('a', {href: link(offset + PAGE)}, 'Older →') : null),
  ];
}
