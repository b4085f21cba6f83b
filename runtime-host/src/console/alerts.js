// Alerts: each tenant's alert routes (create, enable/disable — confirmed,
// audited by the server as alert_route.create / alert_route.status) and
// the recorded deliveries (sent, failed, skipped with the reason).

import * as api from './api.js';
import {announce, confirmAction, field, h, heading, pill, reportError, select, table, when} from './dom.js';

const CHANNELS = [['webhook', 'Webhook'], ['slack_webhook', 'Slack webhook'], ['pagerduty_events', 'PagerDuty Events v2']];
const EVENTS = 'slo_at_risk, outbox_dead_letters, key_rotation_sla_failed, key_usage_anomaly';

/** A target without its path (webhook URLs often carry a secret in it). */
function shortTarget(t) {
  try {
    const u = new URL(t);
    return `${u.origin}${u.pathname.length > 1 ? '/…' : ''}`;
  } catch {
    return '(unparsable target)';
  }
}

function policyText(route) {
  const p = route.metadata && route.metadata.policy;
  if (!p) return 'default';
  const parts = [];
  if (p.min_severity) parts.push(`min ${p.min_severity}`);
  if (p.quiet_windows && p.quiet_windows.length) parts.push(`${p.quiet_windows.length} quiet window(s)`);
  if (p.dedupe && p.dedupe.ttl_seconds) parts.push(`dedupe ${p.dedupe.ttl_seconds} s`);
  return parts.join(', ') || 'default';
}

function toggleButton(route) {
  const next = route.status === 'active' ? 'disabled' : 'active';
  const label = next === 'active' ? 'Enable' : 'Disable';
  const b = h('button', {type: 'button', class: 'secondary small', 'aria-label': `${label} route ${route.label || route.id}`}, label);
  b.addEventListener('click', async () => {
    const ok = await confirmAction(`${label} alert route`,
      h('p', {}, `${label} the ${route.channel} route “${route.label || route.id}” of tenant ${route.tenant_id}? The change is recorded in the audit log.`),
      label, next === 'disabled');
    if (!ok) return;
    try {
      await api.post(`alerts/routes/${encodeURIComponent(route.id)}/status`, {status: next});
      window.dispatchEvent(new CustomEvent('cairn:rerender', {detail: `Route ${route.label || route.id} is ${next}.`}));
    } catch (e) {
      reportError(e, `${label} the route`);
    }
  });
  return b;
}

function createForm(tenant) {
  const [tenantField, tenantInput] = field('Tenant', h('input', {type: 'text', value: tenant || 'default', required: true}));
  const [channelField, channelSelect] = field('Channel', select(CHANNELS, 'webhook'));
  const [labelField, labelInput] = field('Label', h('input', {type: 'text', maxlength: 256}));
  const [targetField, targetInput] = field('Target URL', h('input', {type: 'url', required: true}),
    'Public https:// only (loopback http:// when the server allows it).');
  const [eventsField, eventsInput] = field('Events', h('input', {type: 'text', value: '*'}), `Comma-separated, * for all: ${EVENTS}.`);
  const [secretField, secretInput] = field('Secret', h('input', {type: 'password', autocomplete: 'off'}),
    'Signs webhook bodies (HMAC-SHA256); the PagerDuty routing key. Never shown again.');
  const [sevField, sevSelect] = field('Minimum severity', select([['', 'any'], ['warning', 'warning'], ['critical', 'critical']], ''));
  const add = h('button', {type: 'button'}, 'Add route');
  add.addEventListener('click', async () => {
    const body = {
      tenant_id: tenantInput.value.trim(), channel: channelSelect.value, target: targetInput.value.trim(),
      events: eventsInput.value.split(',').map((x) => x.trim()).filter(Boolean),
    };
    if (labelInput.value.trim()) body.label = labelInput.value.trim();
    if (secretInput.value) body.secret = secretInput.value;
    if (sevSelect.value) body.metadata = {policy: {min_severity: sevSelect.value}};
    if (!body.tenant_id || !body.target) {
      announce('A route needs a tenant and a target.', 'error');
      return;
    }
    const ok = await confirmAction('Add alert route',
      h('p', {}, `Send ${body.events.join(', ') || '*'} alerts of tenant ${body.tenant_id} to ${shortTarget(body.target)} (${body.channel})? Recorded in the audit log.`),
      'Add route');
    if (!ok) return;
    try {
      await api.post('alerts/routes', body);
      secretInput.value = '';
      window.dispatchEvent(new CustomEvent('cairn:rerender', {detail: 'Route added.'}));
    } catch (e) {
      reportError(e, 'Adding the route');
    }
  });
  return h('details', {class: 'panel'}, h('summary', {}, 'Add a route'),
    h('div', {class: 'form-grid'}, tenantField, channelField, labelField, targetField, eventsField, secretField, sevField),
    h('div', {class: 'actions'}, add));
}

export async function renderAlerts(r) {
  const tenant = r.params.get('tenant') || '';
  const status = r.params.get('status') || '';
  const [routes, deliveries] = await Promise.all([
    api.get('alerts/routes', {tenant_id: tenant, limit: 500}),
    api.get('alerts/deliveries', {tenant_id: tenant, status, limit: 100}),
  ]);
  const labels = Object.fromEntries(routes.routes.map((x) => [x.id, x.label || x.id]));
  const [tenantField, tenantInput] = field('Tenant', h('input', {type: 'text', value: tenant, spellcheck: 'false'}));
  const [statusField, statusSelect] = field('Delivery status',
    select([['', 'any'], ['sent', 'sent'], ['failed', 'failed'], ['skipped', 'skipped']], status));
  const apply = h('button', {type: 'button'}, 'Filter');
  const go = () => {
    const q = new URLSearchParams();
    if (tenantInput.value.trim()) q.set('tenant', tenantInput.value.trim());
    if (statusSelect.value) q.set('status', statusSelect.value);
    const s = q.toString();
    window.location.hash = `#/alerts${s ? `?${s}` : ''}`;
  };
  apply.addEventListener('click', go);
  tenantInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });

  const routeRows = routes.routes.map((x) => [x.label || x.id, x.tenant_id, x.channel, (x.events || []).join(', '), pill(x.status),
    h('code', {}, shortTarget(x.target)), policyText(x), toggleButton(x)]);
  const deliveryRows = deliveries.deliveries.map((d) => [when(d.created_at), d.event_type, pill(d.status),
    labels[d.route_id] || d.route_id, d.tenant_id, d.response_code === null ? '—' : String(d.response_code),
    d.error || (d.metadata && d.metadata.severity) || '—']);
  return [
    ...heading('Alerts', 'Where each tenant\'s alerts go, and every delivery decision: sent, failed, or skipped with its reason.'),
    h('div', {class: 'toolbar', role: 'search', 'aria-label': 'Filter alerts'}, tenantField, statusField, apply),
    h('section', {'aria-labelledby': 'routes-h'}, h('h2', {id: 'routes-h'}, 'Routes'),
      table('Alert routes', ['Route', 'Tenant', 'Channel', 'Events', 'Status', 'Target', 'Policy', 'Action'], routeRows,
        'No alert routes.'),
      createForm(tenant)),
    h('section', {'aria-labelledby': 'deliveries-h'}, h('h2', {id: 'deliveries-h'}, 'Deliveries'),
      table('Alert deliveries, newest first', ['When', 'Event', 'Status', 'Route', 'Tenant', 'Response', 'Error or severity'],
        deliveryRows, 'No deliveries recorded.')),
  ];
}
