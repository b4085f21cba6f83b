// A tenant's SLO view: each objective's attainment, error budget (gauge)
// and burn rates (bars) from GET slo/tenant/:id, and p95 latency and error
// rate per hour (charts) from GET dashboard/tenant/:id/timeseries.

import * as api from './api.js';
import {budgetGauge, burnBars, timeChart} from './charts.js';
import {field, h, heading, pct, pill, select, table, when} from './dom.js';

const HOUR = 3600e3;
const WINDOWS = [[6, '6 hours'], [24, '24 hours'], [72, '3 days'], [168, '7 days'], [720, '30 days']];
const REASONS = {error_budget_exhausted: 'error budget exhausted', fast_burn: 'fast burn (1 h ≥ 14.4× and 6 h ≥ 6×)',
  slow_burn: 'slow burn (24 h ≥ 3×)'};

const ms = (v) => (v >= 100 ? `${Math.round(v)} ms` : `${Number(Number(v).toFixed(v >= 10 ? 0 : 1))} ms`);
const rate = (v) => `${Number((v * 100).toFixed(v >= 0.1 ? 0 : 1))}%`;

function objectiveLine(o) {
  const scope = o.endpoint ? `${o.endpoint} requests` : 'all requests';
  const sli = o.sli === 'latency' ? `within ${o.threshold_ms} ms` : 'not 5xx or 429';
  return `${scope} ${sli}; target ${pct(o.target)}`;
}

function objectiveCard(o, windowHours) {
  const consumed = o.error_budget.consumed_ratio;
  const consumedText = consumed === 'exhausted' ? 'all of it (no budget at this target)' : pct(consumed, 1);
  const b = o.burn_rates;
  const burnSummary = `Burn rates: 1 h ${Number(b['1h']).toFixed(2)}×, 6 h ${Number(b['6h']).toFixed(2)}×, ` +
    `24 h ${Number(b['24h']).toFixed(2)}× the pace that spends the budget exactly over the SLO window.`;
  const cls = `obj-${o.name.replace(/[^a-z0-9_-]/gi, '_')}`;
  return h('article', {class: `objective ${o.status}`, 'aria-labelledby': `${cls}-h`},
    h('h3', {id: `${cls}-h`}, o.name, ' ', pill(o.status)),
    h('p', {class: 'sub'}, objectiveLine(o)),
    o.reasons.length ? h('p', {class: 'reasons'}, o.status === 'breached' ? 'Breached: ' : 'At risk: ', o.reasons.map((r) => REASONS[r] || r).join('; ')) : null,
    h('dl', {class: 'facts'},
      h('div', {}, h('dt', {}, 'Attainment'), h('dd', {}, pct(o.window.attainment, 3))),
      h('div', {}, h('dt', {}, 'Good / total'), h('dd', {}, `${o.window.good} / ${o.window.total}`)),
      h('div', {}, h('dt', {}, 'Bad / allowed'), h('dd', {}, `${o.window.bad} / ${Number(o.error_budget.allowed_bad).toFixed(1)}`))),
    budgetGauge({cls, name: o.name, consumed,
      summary: `Error budget consumed over ${windowHours} h: ${consumedText}; remaining ${pct(o.error_budget.remaining_ratio, 1)}.`}),
    burnBars({cls, name: o.name, rates: b, summary: burnSummary}));
}

function latencySummary(series, windowHours) {
  if (!series.length) return `No requests in the last ${windowHours} hours.`;
  return series.map((x) => {
    const peak = x.points.reduce((a, p) => (p.v > a.v ? p : a));
    const last = x.points.reduce((a, p) => (p.t > a.t ? p : a));
    return `${x.name}: highest p95 ${ms(peak.v)} in the hour from ${when(new Date(peak.t).toISOString())}, ` +
      `latest ${ms(last.v)} (${x.points.length} hours with requests).`;
  }).join(' ');
}

export async function renderSlo(r) {
  const tenant = r.args[0] || 'default';
  const windowHours = Number(r.params.get('window')) || 24;
  const enc = encodeURIComponent(tenant);
  const [slo, ts] = await Promise.all([
    api.get(`slo/tenant/${enc}`, {window_hours: windowHours}).catch((e) => {
      if (e.status === 404) return {missing: e.message, objectives: [], at_risk: []};
      throw e;
    }),
    api.get(`dashboard/tenant/${enc}/timeseries`, {window_hours: windowHours, limit: 5000}),
  ]);
  const to = Date.parse(ts.snapshot.anchor_utc);
  const from = to - ts.window_hours * HOUR;

  // p95 latency per endpoint; error rate (5xx + 429) over all endpoints.
  const byEndpoint = new Map();
  const byHour = new Map();
  for (const b of ts.series) {
    const t = Date.parse(b.bucket_utc);
    if (!byEndpoint.has(b.endpoint)) byEndpoint.set(b.endpoint, []);
    byEndpoint.get(b.endpoint).push({t, v: b.latency_p95_ms});
    const agg = byHour.get(t) || {total: 0, bad: 0};
    agg.total += b.total;
    agg.bad += b.error_budget_consumed;
    byHour.set(t, agg);
  }
  const latency = [...byEndpoint.entries()].sort().map(([name, points]) => ({name, points}));
  const errors = [{name: 'error rate', points: [...byHour.entries()].map(([t, a]) => ({t, v: a.total ? a.bad / a.total : 0}))}];
  const totals = [...byHour.values()].reduce((a, x) => ({total: a.total + x.total, bad: a.bad + x.bad}), {total: 0, bad: 0});
  const worst = errors[0].points.reduce((a, p) => (!a || p.v > a.v ? p : a), null);
  const latencyRefs = slo.objectives.filter((o) => o.sli === 'latency')
    .map((o) => ({v: o.threshold_ms, label: `${o.endpoint || 'all'} objective ${o.threshold_ms} ms`}));
  const avail = slo.objectives.find((o) => o.sli === 'availability');
  const errorRefs = avail ? [{v: 1 - avail.target, label: `budget rate ${rate(1 - avail.target)}`}] : [];

  const [winField, winSelect] = field('Window', select(WINDOWS.map(([v, t]) => [String(v), t]), String(windowHours)));
  winSelect.addEventListener('change', () => {
    window.location.hash = `#/slo/${enc}?window=${winSelect.value}`;
  });

  const atRisk = slo.missing
    ? h('p', {class: 'callout warn'}, `No SLO for this tenant: ${slo.missing}`)
    : slo.at_risk.length
      ? h('p', {class: 'callout bad', id: 'at-risk'}, `Breached or at risk: ${slo.at_risk.join(', ')}.`)
      : h('p', {class: 'callout ok', id: 'at-risk'}, 'Every objective is within its budget.');

  const hourly = [...ts.series].map((b) => [when(b.bucket_utc), b.endpoint, String(b.total), ms(b.latency_p50_ms),
    ms(b.latency_p95_ms), ms(b.latency_p99_ms), `${b.error_budget_consumed} (${rate(b.error_rate)})`]);

  return [
    ...heading(`SLO: ${tenant}`, slo.missing ? null
      : `Tier ${slo.tier}${slo.contractual ? ' (contractual)' : ''}, measured over the last ${slo.window_hours} hours at ${when(slo.generated_at)}.`),
    h('div', {class: 'toolbar', role: 'group', 'aria-label': 'SLO window and links'}, winField,
      h('a', {href: `#/outbox?tenant=${enc}`}, 'Outbox'), h('a', {href: `#/audit?tenant=${enc}`}, 'Audit log'),
      h('a', {href: `#/alerts?tenant=${enc}`}, 'Alerts')),
    atRisk,
    slo.objectives.length ? h('section', {'aria-labelledby': 'objectives-h'},
      h('h2', {id: 'objectives-h'}, 'Objectives'),
      h('div', {class: 'objectives'}, slo.objectives.map((o) => objectiveCard(o, slo.window_hours)))) : null,
    h('section', {'aria-labelledby': 'latency-h'},
      h('h2', {id: 'latency-h'}, 'p95 latency per hour'),
      timeChart({cls: 'chart-latency', title: `p95 latency per hour, ${tenant}`,
        desc: `Line chart of each endpoint's 95th-percentile latency per hour over the last ${ts.window_hours} hours.`,
        summary: latencySummary(latency, ts.window_hours), series: latency, from, to, yFormat: ms, yLabel: 'p95 latency (ms)',
        refs: latencyRefs})),
    h('section', {'aria-labelledby': 'errors-h'},
      h('h2', {id: 'errors-h'}, 'Error rate per hour'),
      timeChart({cls: 'chart-errors', kind: 'area', title: `Error rate per hour, ${tenant}`,
        desc: `Area chart of the share of requests that answered 5xx or 429, per hour, over the last ${ts.window_hours} hours.`,
        summary: totals.total
          ? `${totals.bad} of ${totals.total} requests (${rate(totals.bad / totals.total)}) answered 5xx or 429; ` +
            `the worst hour, from ${when(new Date(worst.t).toISOString())}, at ${rate(worst.v)}.`
          : `No requests in the last ${ts.window_hours} hours.`,
        series: errors, from, to, yFormat: rate, yLabel: 'error rate', refs: errorRefs})),
    h('details', {class: 'data'}, h('summary', {}, 'Hourly figures as a table'),
      table('Hourly request telemetry', ['Hour', 'Endpoint', 'Requests', 'p50', 'p95', 'p99', '5xx + 429'], hourly,
        'No requests in this window.')),
  ];
}
