// Tenants: each tenant's status, tier, keys, quota and storage used, from
// GET tenants, GET tiers and GET dashboard/tenant/:id.

import * as api from './api.js';
import {bytes, h, heading, mapLimit, pill, table} from './dom.js';

const PAGE = 50;

function quotaText(dash, profile) {
  const q = dash.quota_profile;
  if (q) return `own profile: write ${q.write_rps}/s (burst ${q.write_burst}), recall ${q.recall_rps}/s (burst ${q.recall_burst})`;
  const t = profile && profile.quotas;
  if (t && t.write && t.recall) return `tier: write ${t.write.rps}/s, recall ${t.recall.rps}/s`;
  return 'none';
}

function storageCell(used, capMb, tenant) {
  if (!capMb) return bytes(used);
  const cap = capMb * 1e6;
  const ratio = Math.min(used / cap, 1);
  return h('span', {class: 'storage'},
    h('meter', {min: 0, max: 1, low: 0.8, high: 0.95, optimum: 0, value: ratio.toFixed(4),
      'aria-label': `Storage used by ${tenant}`}),
    ` ${bytes(used)} of ${capMb} MB (${(ratio * 100).toFixed(1)}%)`);
}

export async function renderTenants(r) {
  const offset = Math.max(0, Number(r.params.get('offset')) || 0);
  const [tiers, list, fallback] = await Promise.all([
    api.get('tiers'),
    api.get('tenants', {limit: PAGE, offset}),
    api.get('dashboard/tenant/default'),
  ]);
  const profiles = Object.fromEntries((tiers.tiers || []).map((t) => [t.tier, t]));
  const defaultTenant = fallback.dashboard.default_tenant_id;
  const ids = list.tenants.map((t) => t.tenant_id);
  const rows = list.tenants.map((t) => ({...t}));
  if (offset === 0 && !ids.includes(defaultTenant)) {
    rows.unshift({tenant_id: defaultTenant, display_name: 'default tenant (unprefixed scopes)', status: 'active'});
  }
  const dashboards = await mapLimit(rows, 4, (t) =>
    t.tenant_id === 'default' ? fallback : api.get(`dashboard/tenant/${encodeURIComponent(t.tenant_id)}`));
  const body = rows.map((t, i) => {
    const d = dashboards[i].dashboard;
    const tier = (d.tenant && d.tenant.tier) || tiers.default_tier;
    const profile = profiles[tier];
    const capMb = profile && profile.resource_caps && profile.resource_caps.storage_mb;
    const id = encodeURIComponent(t.tenant_id);
    const dead = d.outbox.failed;
    return [
      h('span', {}, h('a', {href: `#/slo/${id}`, class: 'tenant-link'}, t.tenant_id),
        t.display_name ? h('span', {class: 'hint block'}, t.display_name) : null),
      pill(t.status),
      tier,
      `${d.api_keys.active} active · ${d.api_keys.revoked} revoked`,
      quotaText(d, profile),
      storageCell(d.data_plane.stored_bytes || 0, capMb, t.tenant_id),
      h('a', {href: `#/outbox?tenant=${id}`}, `${d.outbox.pending} pending`,
        dead ? h('span', {class: 'bad-text'}, ` · ${dead} dead letter${dead === 1 ? '' : 's'}`) : ''),
      h('span', {class: 'links'},
        h('a', {href: `#/slo/${id}`, 'aria-label': `SLO of ${t.tenant_id}`}, 'SLO'), ' · ',
        h('a', {href: `#/audit?tenant=${id}`, 'aria-label': `Audit log of ${t.tenant_id}`}, 'Audit'), ' · ',
        h('a', {href: `#/alerts?tenant=${id}`, 'aria-label': `Alerts of ${t.tenant_id}`}, 'Alerts')),
    ];
  });
  const pager = h('nav', {class: 'pager', 'aria-label': 'Tenant pages'},
    offset > 0 ? h('a', {href: `#/tenants?offset=${Math.max(0, offset - PAGE)}`}, '← Previous') : null,
    list.tenants.length === PAGE ? h('a', {href: `#/tenants?offset=${offset + PAGE}`}, 'Next →') : null);
  return [
    ...heading('Tenants', `Tier, status, API keys, quota and storage of each tenant (default tier: ${tiers.default_tier}).`),
    table('Tenants', ['Tenant', 'Status', 'Tier', 'API keys', 'Quota', 'Storage used', 'Outbox', 'Views'], body,
      'No tenants yet.'),
    pager,
  ];
}
