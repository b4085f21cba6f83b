// Hand-written SVG charts. Each chart is an <svg role="img"> with a
// <title> and a <desc>, its data points are <circle class="point"> (each
// with its own <title>), and the caller gives a text summary shown under
// it, so the figures are readable without seeing the drawing.

import {h, s, uid} from './dom.js';

const HOUR = 3600e3;
const DASHES = [null, '6 4', '2 3', '10 3 2 3'];

/** A "nice" upper bound at or above x whose quarters read well (1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8 × 10^n). */
export function niceCeil(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function hourLabel(ms, long) {
  const iso = new Date(ms).toISOString();
  return long ? iso.slice(5, 10) : `${iso.slice(11, 13)}:00`;
}

function svgRoot(cls, w, hgt, title, desc) {
  const tid = uid('chart-title');
  const did = uid('chart-desc');
  return s('svg', {class: `chart ${cls}`, viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-labelledby': `${tid} ${did}`,
    preserveAspectRatio: 'xMidYMid meet', focusable: 'false'},
  s('title', {id: tid}, title), s('desc', {id: did}, desc));
}

function legend(series) {
  if (series.length < 2) return null;
  return h('ul', {class: 'legend', 'aria-label': 'Series'}, series.map((x, i) =>
    h('li', {}, h('span', {class: `swatch series-${i % 4}${DASHES[i % 4] ? ' dashed' : ''}`, 'aria-hidden': 'true'}), x.name)));
}

/**
 * A time chart over [from, to] (ms): kind 'line' or 'area', series
 * [{name, points: [{t, v}]}] (t = bucket start, hourly), refs [{v, label}]
 * as dashed horizontal lines, yFormat(v) for labels.
 */
export function timeChart({cls, title, desc, summary, kind = 'line', series, from, to, yFormat, yLabel, refs = []}) {
  const W = 760;
  const H = 260;
  const m = {top: 18, right: 20, bottom: 38, left: 64};
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const values = series.flatMap((x) => x.points.map((p) => p.v)).concat(refs.map((r) => r.v));
  const ymax = niceCeil(Math.max(0, ...values) * 1.1);
  const x = (t) => m.left + ((t - from) / (to - from)) * iw;
  const y = (v) => m.top + ih - (v / ymax) * ih;
  const svg = svgRoot(cls, W, H, title, desc);

  // Axes and grid.
  const grid = s('g', {class: 'grid', 'aria-hidden': 'true'});
  for (let i = 0; i <= 4; i += 1) {
    const v = (ymax * i) / 4;
    grid.append(s('line', {x1: m.left, x2: W - m.right, y1: y(v), y2: y(v)}),
      s('text', {x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'tick'}, yFormat(v)));
  }
  const hours = (to - from) / HOUR;
  const step = [1, 2, 3, 6, 12, 24, 48, 72, 168].find((st) => hours / st <= 8) || 168;
  const long = hours > 48;
  const first = Math.ceil(from / (step * HOUR)) * step * HOUR;
  for (let t = first; t <= to; t += step * HOUR) {
    grid.append(s('line', {x1: x(t), x2: x(t), y1: m.top + ih, y2: m.top + ih + 5}),
      s('text', {x: x(t), y: H - m.bottom + 20, 'text-anchor': 'middle', class: 'tick'}, hourLabel(t, long)));
  }
  grid.append(s('line', {class: 'axis', x1: m.left, x2: W - m.right, y1: m.top + ih, y2: m.top + ih}),
    s('line', {class: 'axis', x1: m.left, x2: m.left, y1: m.top, y2: m.top + ih}),
    s('text', {class: 'axis-label', x: 14, y: m.top + ih / 2, transform: `rotate(-90 14 ${m.top + ih / 2})`,
      'text-anchor': 'middle'}, yLabel),
    s('text', {class: 'axis-label', x: m.left + iw / 2, y: H - 2, 'text-anchor': 'middle'},
      long ? 'day (UTC)' : 'hour (UTC)'));
  svg.append(grid);

  for (const r of refs) {
    if (r.v > ymax) continue;
    svg.append(s('g', {class: 'ref'},
      s('line', {x1: m.left, x2: W - m.right, y1: y(r.v), y2: y(r.v), 'stroke-dasharray': '4 4'}),
      s('text', {x: W - m.right - 4, y: y(r.v) - 5, 'text-anchor': 'end', class: 'ref-label'}, r.label)));
  }

  series.forEach((ser, i) => {
    const g = s('g', {class: `series series-${i % 4}`, 'data-series': ser.name});
    const pts = [...ser.points].sort((a, b) => a.t - b.t);
    // Consecutive hours are joined; a gap (no requests) breaks the line.
    const runs = [];
    for (const p of pts) {
      const last = runs.length ? runs[runs.length - 1] : null;
      if (last && p.t - last[last.length - 1].t <= HOUR) last.push(p);
      else runs.push([p]);
    }
    const mid = HOUR / 2;
    for (const run of runs) {
      const d = run.map((p, j) => `${j ? 'L' : 'M'}${x(p.t + mid).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
      if (kind === 'area' && run.length > 1) {
        const base = y(0).toFixed(1);
        g.append(s('path', {class: 'area', d: `${d} L${x(run[run.length - 1].t + mid).toFixed(1)},${base} L${x(run[0].t + mid).toFixed(1)},${base} Z`}));
      }
      if (run.length > 1) g.append(s('path', {class: 'line', d, fill: 'none', 'stroke-dasharray': DASHES[i % 4]}));
    }
    for (const p of pts) {
      g.append(s('circle', {class: 'point', cx: x(p.t + mid).toFixed(1), cy: y(p.v).toFixed(1), r: 3.5,
        'data-t': new Date(p.t).toISOString(), 'data-v': p.v},
      s('title', {}, `${hourLabel(p.t, false)} UTC ${new Date(p.t).toISOString().slice(0, 10)}, ${ser.name}: ${yFormat(p.v)}`)));
    }
    svg.append(g);
  });
  if (!values.length || !series.some((x2) => x2.points.length)) {
    svg.append(s('text', {x: m.left + iw / 2, y: m.top + ih / 2, 'text-anchor': 'middle', class: 'no-data'},
      'No requests in this window'));
  }
  return h('figure', {class: 'chart-figure'}, svg, h('figcaption', {}, legend(series), h('p', {class: 'summary'}, summary)));
}

/** The error budget consumed as a horizontal gauge (0..100 %, overflow shown as full). */
export function budgetGauge({cls, name, consumed, summary}) {
  const W = 360;
  const H = 58;
  const ratio = consumed === 'exhausted' ? 1 : Math.max(0, Number(consumed) || 0);
  const shown = Math.min(ratio, 1);
  const level = ratio >= 1 ? 'bad' : ratio >= 0.75 ? 'warn' : 'ok';
  const svg = svgRoot(`gauge ${cls}`, W, H, `Error budget consumed: ${name}`, summary);
  const x0 = 8;
  const w = W - 16;
  svg.append(
    s('rect', {class: 'track', x: x0, y: 8, width: w, height: 18, rx: 4}),
    s('rect', {class: `fill ${level}`, x: x0, y: 8, width: (w * shown).toFixed(1), height: 18, rx: 4,
      'data-v': ratio}),
    ...[0.5, 0.75].map((f) => s('line', {class: 'mark', x1: x0 + w * f, x2: x0 + w * f, y1: 5, y2: 29})),
    s('text', {x: x0, y: 46, class: 'tick'}, '0%'),
    s('text', {x: x0 + w * 0.5, y: 46, class: 'tick', 'text-anchor': 'middle'}, '50%'),
    s('text', {x: x0 + w * 0.75, y: 46, class: 'tick', 'text-anchor': 'middle'}, '75%'),
    s('text', {x: x0 + w, y: 46, class: 'tick', 'text-anchor': 'end'}, '100%'),
  );
  return h('figure', {class: 'gauge-figure'}, svg, h('figcaption', {}, h('p', {class: 'summary'}, summary)));
}

/** Burn rates (1h/6h/24h) as bars against the budget pace, slow- and fast-burn lines. */
export function burnBars({cls, name, rates, summary}) {
  const W = 360;
  const H = 170;
  const m = {top: 14, right: 96, bottom: 28, left: 16};
  const keys = ['1h', '6h', '24h'];
  const vals = keys.map((k) => Number(rates[k]) || 0);
  const ymax = niceCeil(Math.max(3.5, ...vals) * 1.1);
  const ih = H - m.top - m.bottom;
  const iw = W - m.left - m.right;
  const y = (v) => m.top + ih - (Math.min(v, ymax) / ymax) * ih;
  const svg = svgRoot(`burn ${cls}`, W, H, `Burn rates: ${name}`, summary);
  svg.append(s('line', {class: 'axis', x1: m.left, x2: m.left + iw, y1: y(0), y2: y(0)}));
  const bw = iw / keys.length;
  keys.forEach((k, i) => {
    const v = vals[i];
    const level = v >= 14.4 ? 'bad' : v >= 3 ? 'warn' : 'ok';
    svg.append(s('rect', {class: `bar ${level}`, x: (m.left + i * bw + bw * 0.2).toFixed(1), y: y(v).toFixed(1),
      width: (bw * 0.6).toFixed(1), height: Math.max(0, y(0) - y(v)).toFixed(1), 'data-window': k, 'data-v': v},
    s('title', {}, `${k} burn rate ${v.toFixed(2)}×`)),
    s('text', {x: m.left + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'tick'}, k),
    s('text', {x: m.left + i * bw + bw / 2, y: Math.max(m.top + 10, y(v) - 4), 'text-anchor': 'middle', class: 'value'},
      `${v.toFixed(v >= 10 ? 0 : 2)}×`));
  });
  for (const [v, label] of [[1, '1× budget pace'], [3, '3× slow burn'], [14.4, '14.4× fast burn']]) {
    if (v > ymax) continue;
    svg.append(s('g', {class: 'ref'},
      s('line', {x1: m.left, x2: m.left + iw, y1: y(v), y2: y(v), 'stroke-dasharray': '4 4'}),
      s('text', {x: m.left + iw + 4, y: y(v) + 4, class: 'ref-label'}, label)));
  }
  return h('figure', {class: 'burn-figure'}, svg, h('figcaption', {}, h('p', {class: 'summary'}, summary)));
}
