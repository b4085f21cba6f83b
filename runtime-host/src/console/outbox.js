// The derivation outbox: backlog counts, dead letters with their reasons,
// and replay — a dry run first, then the replay, each confirmed and each
// recorded by the server as an audit event (outbox.replay.preview,
// outbox.replay).

import * as api from './api.js';
import {announce, confirmAction, field, h, heading, replace, reportError, select, table, when} from './dom.js';

function age(sec) {
  if (sec === null || sec === undefined) return '—';
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${Math.round(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

function tile(label, value, cls) {
  return h('div', {class: `tile ${cls || ''}`}, h('dt', {}, label), h('dd', {}, String(value)));
}

export async function renderOutbox(r) {
  const tenant = r.params.get('tenant') || '';
  const [status, tenants] = await Promise.all([
    api.get('outbox', {tenant_id: tenant, status: 'dead_letter', limit: 200}),
    api.get('tenants', {limit: 500}),
  ]);
  const o = status.outbox;
  const names = tenants.tenants.map((t) => t.tenant_id);
  if (!names.includes('default')) names.unshift('default');
  if (tenant && !names.includes(tenant)) names.push(tenant);
  const [tenantField, tenantSelect] = field('Tenant',
    select([['', 'All tenants'], ...names.map((n) => [n, n])], tenant));
  tenantSelect.addEventListener('change', () => {
    window.location.hash = tenantSelect.value ? `#/outbox?tenant=${encodeURIComponent(tenantSelect.value)}` : '#/outbox';
  });

  // Dead letters, each selectable for a replay by id.
  const boxes = [];
  const rows = status.samples.map((j) => {
    const box = h('input', {type: 'checkbox', id: `job-${j.id}`, value: j.id, class: 'job-select'});
    boxes.push(box);
    return {attrs: {'data-job': j.id}, cells: [
      h('span', {class: 'job'}, box, h('label', {for: box.id}, ` #${j.id}`, h('span', {class: 'sr-only'}, ' (select for replay)'))),
      j.event_type, `${j.tenant_id} / ${j.scope}`, String(j.attempts), when(j.failed_at),
      h('span', {class: 'reason'}, j.failed_reason || '—'),
      j.last_error ? h('code', {class: 'error-text'}, j.last_error) : '—']};
  });

  // Replay: the same request as a dry run, then for real.
  const result = h('div', {class: 'result', id: 'replay-result', 'aria-live': 'polite'});
  const [reasonField, reasonInput] = field('Reason (recorded in the audit log)',
    h('input', {type: 'text', value: 'console replay', maxlength: 256, id: 'replay-reason'}));
  const reset = h('input', {type: 'checkbox', id: 'replay-reset', checked: true});
  const which = tenant ? 'all dead letters of this tenant, or the selected ones'
    : 'the selected dead letters (choose a tenant to replay all of its dead letters)';
  const dryBtn = h('button', {type: 'button', id: 'dry-run'}, 'Dry run');
  const replayBtn = h('button', {type: 'button', id: 'replay', class: 'danger', disabled: true}, 'Replay');
  let previewed = null; // the request body the last dry run checked

  function request() {
    const ids = boxes.filter((b) => b.checked).map((b) => Number(b.value));
    const body = {statuses: ['dead_letter'], reset_attempts: reset.checked, reason: reasonInput.value.trim() || 'manual_replay'};
    if (tenant) body.tenant_id = tenant;
    if (ids.length) body.ids = ids;
    return body;
  }
  function describe(body) {
    const what = body.ids ? `${body.ids.length} selected dead letter${body.ids.length === 1 ? '' : 's'} (#${body.ids.join(', #')})`
      : `every dead letter of tenant ${body.tenant_id}`;
    return `${what}${body.tenant_id && body.ids ? ` of tenant ${body.tenant_id}` : ''}`;
  }
  function invalidate() {
    previewed = null;
    replayBtn.disabled = true;
    replayBtn.textContent = 'Replay';
  }
  for (const el of [...boxes, reset, reasonInput]) el.addEventListener('input', invalidate);

  dryBtn.addEventListener('click', async () => {
    const body = request();
    if (!body.tenant_id && !body.ids) {
      announce('Select dead letters to replay, or choose a tenant.', 'error');
      return;
    }
    const ok = await confirmAction('Dry run of a replay',
      [h('p', {}, `Check which jobs a replay of ${describe(body)} would put back in line. Nothing changes; the dry run is recorded in the audit log.`)],
      'Run the dry run');
    if (!ok) return;
    dryBtn.disabled = true;
    try {
      const res = await api.post('outbox/replay', {...body, dry_run: true});
      previewed = JSON.stringify(body);
      replace(result,
        h('h3', {}, 'Dry run'),
        h('p', {id: 'dry-run-summary'}, `${res.candidate_count} job${res.candidate_count === 1 ? '' : 's'} would be replayed. Audit event ${res.audit_event_id}.`),
        res.jobs_sample.length ? h('ul', {}, res.jobs_sample.map((j) => h('li', {}, `#${j.id} ${j.event_type}: ${j.failed_reason || j.last_error || ''}`))) : null);
      replayBtn.disabled = res.candidate_count === 0;
      replayBtn.textContent = `Replay ${res.candidate_count} job${res.candidate_count === 1 ? '' : 's'}`;
      announce(`Dry run: ${res.candidate_count} job(s) would be replayed.`, 'ok');
    } catch (e) {
      reportError(e, 'The dry run');
    } finally {
      dryBtn.disabled = false;
    }
  });

  replayBtn.addEventListener('click', async () => {
    const body = request();
    if (previewed !== JSON.stringify(body)) {
      invalidate();
      announce('The replay changed since its dry run: run the dry run again.', 'error');
      return;
    }
    const ok = await confirmAction('Replay dead letters',
      [h('p', {}, `Put ${describe(body)} back in line for derivation${body.reset_attempts ? ', with their attempts reset' : ''}?`),
        h('p', {}, `Reason: “${body.reason}”. The replay is recorded in the audit log.`)],
      'Replay', true);
    if (!ok) return;
    replayBtn.disabled = true;
    try {
      const res = await api.post('outbox/replay', {...body, dry_run: false});
      invalidate();
      replace(result,
        h('h3', {}, 'Replayed'),
        h('p', {id: 'replay-summary'}, `${res.replayed_count} job${res.replayed_count === 1 ? '' : 's'} replayed. Audit event ${res.audit_event_id}. `,
          h('a', {href: `#/audit?action=outbox.replay${tenant ? `&tenant=${encodeURIComponent(tenant)}` : ''}`}, 'See it in the audit log')));
      announce(`Replayed ${res.replayed_count} job(s).`, 'ok');
      const fresh = await api.get('outbox', {tenant_id: tenant, status: 'dead_letter', limit: 200});
      replace(document.getElementById('backlog'), ...tiles(fresh.outbox));
      replace(document.getElementById('kinds'), kinds(fresh));
      for (const b of boxes) {
        if (res.jobs_sample.some((j) => String(j.id) === b.value)) b.closest('tr').classList.add('replayed');
      }
    } catch (e) {
      reportError(e, 'The replay');
      replayBtn.disabled = false;
    }
  });

  function kinds(st) {
    return table('Jobs by kind', ['Kind', 'Pending', 'Retrying', 'Dead letters', 'Done'],
      st.by_event_type.map((k) => [k.event_type, String(k.pending), String(k.retrying), String(k.dead_letter), String(k.done)]),
      'No jobs yet.');
  }

  function tiles(x) {
    return [tile('Pending', x.pending), tile('Retrying', x.retrying), tile('Dead letters', x.dead_letter, x.dead_letter ? 'bad' : ''),
      tile('Done', x.done), tile('Oldest waiting', age(x.oldest_pending_age_sec))];
  }

  return [
    ...heading('Outbox', `Derivation jobs${tenant ? ` of tenant ${tenant}` : ' of every tenant'}: the backlog, dead letters and replay. Jobs give up after ${status.max_attempts} attempts.`),
    h('div', {class: 'toolbar', role: 'group', 'aria-label': 'Outbox filter'}, tenantField),
    h('section', {'aria-labelledby': 'backlog-h'}, h('h2', {id: 'backlog-h'}, 'Backlog'),
      h('dl', {class: 'tiles', id: 'backlog'}, ...tiles(o)),
      h('div', {id: 'kinds'}, kinds(status))),
    h('section', {'aria-labelledby': 'dead-h'}, h('h2', {id: 'dead-h'}, 'Dead letters'),
      table('Dead-lettered jobs, newest first', ['Job', 'Kind', 'Tenant / scope', 'Attempts', 'Failed', 'Reason', 'Last error'], rows,
        'No dead letters.')),
    h('section', {'aria-labelledby': 'replay-h', class: 'panel'}, h('h2', {id: 'replay-h'}, 'Replay'),
      h('p', {}, `Replays ${which}. Run a dry run first: the replay button opens once it has checked the same request.`),
      reasonField,
      h('div', {class: 'field checkbox'}, reset, h('label', {for: 'replay-reset'}, 'Reset attempts to 0')),
      h('div', {class: 'actions'}, dryBtn, replayBtn),
      result),
  ];
}
