/** Small inline-SVG charts for the report: no script, no external file. */
import { pauseStarts } from '../../inference/contract.js';

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface Span {
  from: number;
  to: number;
  kind: 'anomaly' | 'normal' | 'exclude';
}

export interface SeriesChart {
  title: string;
  timestamps: readonly number[];
  scores: ArrayLike<number>;
  threshold: number;
  spans: readonly Span[];
}

const W = 960;
const H = 220;
const PAD = { left: 56, right: 12, top: 24, bottom: 28 };
const MAX_POINTS = 1200;
const SPAN_FILL = { anomaly: '#e5484d33', normal: '#30a46c26', exclude: '#8b8d9833' };
/** Holes in the scored rows (holesOf). */
const HOLE_FILL = '#f5d90a40';

/** Peaks are kept when many readings share a pixel: each bucket shows its highest score. */
export function downsample(timestamps: readonly number[], scores: ArrayLike<number>, max = MAX_POINTS): { t: number[]; s: number[] } {
  const n = timestamps.length;
  const step = Math.max(1, Math.ceil(n / max));
  const t: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < n; i += step) {
    let top = -Infinity;
    for (let k = i; k < Math.min(n, i + step); k++) top = Math.max(top, scores[k] as number);
    t.push(timestamps[i] as number);
    s.push(top);
  }
  return { t, s };
}

/**
 * Where the scored rows have a hole: a pause by the rule of cleaning and the agent (pauseStarts in
 * inference/contract.ts, judged among these rows): rows dropped by cleaning (a stuck sensor,
 * maintenance, missing values) or a pause in the readings. Index k: a hole between rows k−1 and k.
 */
export function holesOf(timestamps: readonly number[]): number[] {
  return pauseStarts(timestamps).slice(1);
}

/** Text lines closer than this (px) overlap at font size 10. */
const LABEL_GAP = 11;

/**
 * A score-axis label at y, left out where it would overlap the threshold's (at `thresholdY`): the
 * threshold 2.50 on an axis up to 251 was drawn over the "0".
 */
function axisLabel(text: string, y: number, thresholdY: number): string {
  return Math.abs(y - thresholdY) < LABEL_GAP ? '' : `<text x="${PAD.left - 4}" y="${y.toFixed(1)}" font-size="10" text-anchor="end">${text}</text>\n`;
}

export function scoreChart(c: SeriesChart): string {
  if (c.timestamps.length === 0) return `<p>${escapeHtml(c.title)}: no rows.</p>`;
  // Each stretch between holes is downsampled and drawn on its own (a new `M`): a line across a
  // hole looked like calm scored readings where there were none. The holes are shaded.
  const holes = holesOf(c.timestamps);
  const bounds = [0, ...holes, c.timestamps.length];
  const runs = bounds.slice(1).map((end, r) => {
    const start = bounds[r] as number;
    const budget = Math.max(1, Math.round((MAX_POINTS * (end - start)) / c.timestamps.length));
    return downsample(c.timestamps.slice(start, end), Array.from({ length: end - start }, (_, k) => c.scores[start + k] as number), budget);
  });
  const t = runs.flatMap((r) => r.t);
  const s = runs.flatMap((r) => r.s);
  const t0 = c.timestamps[0] as number;
  const t1 = Math.max(t0 + 1, c.timestamps.at(-1) as number);
  const sorted = [...s].sort((a, b) => a - b);
  const p99 = sorted[Math.floor(0.99 * (sorted.length - 1))] ?? 0;
  const top = Math.max(c.threshold * 1.5, Math.min(sorted.at(-1) ?? 1, Math.max(p99, c.threshold) * 2)) || 1;
  const x = (ts: number) => PAD.left + ((ts - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - Math.min(1, Math.max(0, v / top))) * (H - PAD.top - PAD.bottom);
  const spans = c.spans
    .filter((sp) => sp.to >= t0 && sp.from <= t1)
    .map((sp) => `<rect x="${x(Math.max(t0, sp.from)).toFixed(1)}" y="${PAD.top}" width="${Math.max(1, x(Math.min(t1, sp.to)) - x(Math.max(t0, sp.from))).toFixed(1)}" height="${H - PAD.top - PAD.bottom}" fill="${SPAN_FILL[sp.kind]}"><title>${sp.kind}</title></rect>`)
    .join('');
  const line = runs.map((r) => `M${r.s.map((v, i) => `${x(r.t[i] as number).toFixed(1)},${y(v).toFixed(1)}`).join(' L')}`).join(' ');
  const shaded = holes
    .map((k) => {
      const a = x(c.timestamps[k - 1] as number);
      const b = x(c.timestamps[k] as number);
      return `<rect x="${a.toFixed(1)}" y="${PAD.top}" width="${Math.max(1, b - a).toFixed(1)}" height="${H - PAD.top - PAD.bottom}" fill="${HOLE_FILL}"><title>no scored rows ${new Date(c.timestamps[k - 1] as number).toISOString()} → ${new Date(c.timestamps[k] as number).toISOString()} (dropped by cleaning, or a pause in the readings)</title></rect>`;
    })
    .join('');
  const flagged = s.map((v, i) => (v > c.threshold ? `<circle cx="${x(t[i] as number).toFixed(1)}" cy="${y(v).toFixed(1)}" r="1.6" fill="#e5484d"/>` : '')).join('');
  const ty = y(c.threshold);
  // The first label starts at its tick and the last ends at its own: centred, the last one ran past the chart's edge.
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((q) => {
    const ts = t0 + q * (t1 - t0);
    const anchor = q === 0 ? 'start' : q === 1 ? 'end' : 'middle';
    return `<text x="${x(ts).toFixed(1)}" y="${H - 8}" font-size="10" text-anchor="${anchor}">${new Date(ts).toISOString().slice(0, 16).replace('T', ' ')}</text>`;
  });
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${escapeHtml(c.title)}">
<text x="${PAD.left}" y="15" font-size="12" font-weight="600">${escapeHtml(c.title)}</text>
${spans}${shaded}
<rect x="${PAD.left}" y="${PAD.top}" width="${W - PAD.left - PAD.right}" height="${H - PAD.top - PAD.bottom}" fill="none" stroke="#ccc"/>
<path d="${line}" fill="none" stroke="#0b68cb" stroke-width="1"/>
${flagged}
<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e5484d" stroke-dasharray="5 3"/>
<text x="${PAD.left - 4}" y="${(ty + 3).toFixed(1)}" font-size="10" text-anchor="end">${c.threshold.toPrecision(3)}</text>
${axisLabel(top.toPrecision(3), PAD.top + 8, ty + 3)}${axisLabel('0', H - PAD.bottom, ty + 3)}
${ticks.join('')}
</svg>`;
}

/**
 * Horizontal bars (e.g. PSI per feature), each with its own threshold drawn as a tick across its
 * bar (`limit`; none when null: not judged). One line at the lowest threshold made a bar of 1.206
 * look far over its own (above 1.206, raised by its training rows' stray) while the table said ok.
 */
export function barChart(title: string, bars: readonly { label: string; value: number; bad: boolean; limit: number | null }[]): string {
  const rowH = 18;
  const h = 24 + rowH * bars.length + 8;
  const max = Math.max(...bars.map((b) => Math.max(b.value, (b.limit ?? 0) * 1.1))) || 1;
  const x = (v: number) => 200 + (Math.min(v, max) / max) * (W - 260);
  const rows = bars
    .map((b, i) => {
      const yy = 24 + i * rowH;
      const tick =
        b.limit === null
          ? ''
          : `<line x1="${x(b.limit).toFixed(1)}" x2="${x(b.limit).toFixed(1)}" y1="${yy}" y2="${yy + rowH - 1}" stroke="#1c2024" stroke-width="2"><title>${escapeHtml(b.label)}: drift above ${b.limit.toFixed(3)}</title></line>`;
      return `<text x="194" y="${yy + 12}" font-size="11" text-anchor="end">${escapeHtml(b.label)}</text><rect x="200" y="${yy + 2}" width="${Math.max(1, x(b.value) - 200).toFixed(1)}" height="${rowH - 5}" fill="${b.bad ? '#e5484d' : '#0b68cb'}"/>${tick}<text x="${(Math.max(x(b.value), b.limit === null ? 0 : x(b.limit)) + 4).toFixed(1)}" y="${yy + 12}" font-size="10">${b.value.toFixed(3)}</text>`;
    })
    .join('');
  return `<svg viewBox="0 0 ${W} ${h}" width="100%" role="img" aria-label="${escapeHtml(title)}"><text x="8" y="15" font-size="12" font-weight="600">${escapeHtml(title)}</text>${rows}</svg>`;
}
