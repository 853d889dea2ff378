/**
 * `--report report.html`: one self-contained page (inline SVG, no script, no external file) that
 * shows a data scientist why a model won: the held-out scores of challenger and live model over
 * time with their thresholds and the technicians' labels, their metrics side by side, what they
 * flag among the raw held-out readings as the agent would score them, the drift
 * of the held-out data from the baseline, and what the data and the cleaning were.
 */
import type { Target } from '../data/clean.js';
import type { AgentView } from '../eval/as-agent.js';
import { driftNotes, psiCannotDrift, psiNotJudged, type DriftReport } from '../drift/compare.js';
import { notJudgedLines } from '../drift/verdict.js';
import { metricName, type Evaluation } from '../eval/criterion.js';
import { writeAtomically } from '../files.js';
import type { ScoredModel, TrainOutcome } from '../train/pipeline.js';
import { headline, labelsLine, recordedLine } from './headline.js';
import { barChart, escapeHtml, scoreChart, type Span } from './svg.js';

export async function writeReport(path: string, outcome: TrainOutcome): Promise<void> {
  await writeAtomically(path, renderReport(outcome), 'the report');
}

export function labelSpans(timestamps: readonly number[], targets: readonly Target[]): Span[] {
  const spans: Span[] = [];
  targets.forEach((t, i) => {
    // Stopped rows never reach the held-out rows drawn (cleaning drops them).
    if (t === null || t === 'stopped') return;
    const last = spans.at(-1);
    const ts = timestamps[i] as number;
    if (last && last.kind === t && (targets[i - 1] ?? null) === t) last.to = ts;
    else spans.push({ from: ts, to: ts, kind: t });
  });
  return spans;
}

function metricRow(name: string, m: ScoredModel | null): string {
  if (!m) return `<tr><th>${name}</th><td colspan="9">none</td></tr>`;
  const e: Evaluation | null = m.evaluation;
  const cell = (v: string) => `<td>${escapeHtml(v)}</td>`;
  return `<tr><th>${name}</th>${cell(m.version)}${cell(m.algorithm)}${cell(String(m.threshold))}${
    e ? [e.score.toFixed(4), e.f1.toFixed(4), `${e.far.toFixed(2)} %`, `${e.mar.toFixed(2)} %`, `${e.counts.tp}/${e.counts.fp}/${e.counts.fn}/${e.counts.tn}`].map(cell).join('') : '<td colspan="5">cannot score these rows</td>'
  }</tr>`;
}

/** The raw held-out readings as the agent would score them (records written before it have none). */
function asAgentSection(r: NonNullable<TrainOutcome['record']>): string {
  const a = r.evaluation.asAgent;
  if (!a) return '';
  const row = (name: string, m: AgentView | null) =>
    m
      ? `<tr><th>${name}</th><td>${m.readings}</td><td>${m.unscored}</td><td>${m.far.toFixed(2)} % of ${m.normal}</td><td>${m.mar === null ? 'none' : `${m.mar.toFixed(2)} % of ${m.faults}`}</td></tr>`
      : `<tr><th>${name}</th><td colspan="4">none</td></tr>`;
  return `<h3>As the agent would see them: the raw readings from ${escapeHtml(a.from)}</h3>
<p>Before cleaning (stuck runs, outliers, rows with a missing value and maintenance included), scored in time order by the agent's own engine: what the field would get.</p>
<table><tr><th></th><th>readings</th><th>unscored</th><th>normal readings flagged</th><th>confirmed-fault readings missed</th></tr>
${row('challenger', a.challenger)}${row('live model', a.champion)}</table>`;
}

/**
 * The drift table: per feature PSI and KS with the thresholds it was judged by (raised on few
 * rows, drift/compare.ts), a row for each feature of the baseline that the data no longer has, and
 * one for each feature of the data that the model lacks (a sensor added).
 */
function driftSection(drift: DriftReport, heading: string, recentLabel: string): string {
  // Each feature's own PSI threshold (raised by few rows and by its training rows' stray) as a tick on its bar; none where PSI is not judged.
  const chart =
    drift.features.some((f) => f.effective.psi !== null)
      ? barChart(
          'PSI per feature (black tick: its own drift threshold, none where PSI is not judged; red: drifted, by any rule)',
          drift.features.map((f) => ({ label: f.feature, value: f.psi, bad: f.drifted, limit: f.effective.psi === null || psiCannotDrift(f) ? null : f.effective.psi })),
        )
      : '';
  const note = `<p>${drift.rows} rows; drift: PSI &gt; ${drift.thresholds.psi} or KS &gt; ${drift.thresholds.ks}, raised as below.</p>\n${[...driftNotes(drift.rows, drift), ...notJudgedLines(drift)]
    .map((line) => `<p>${escapeHtml(line)}.</p>`)
    .join('\n')}`;
  const rows = drift.features
    .map((f) => {
      const psiLimit =
        f.effective.psi === null
          ? `not judged: ${psiNotJudged(f)}`
          : psiCannotDrift(f)
            ? `${f.effective.psi.toFixed(3)}: not judged, at or above ${f.psiMax.toFixed(3)}, the most ${f.recentCount} rows reach`
            : f.effective.psi.toFixed(3);
      const status = f.drifted ? `<b>drift</b> (${escapeHtml(f.reasons.join('; '))})` : f.notJudged !== null ? 'not judged' : 'ok';
      return `<tr><td>${escapeHtml(f.feature)}</td><td>${f.psi.toFixed(3)}</td><td>${f.ks.toFixed(3)}</td><td>${f.baselineMean}</td><td>${f.recentMean}</td><td>${f.recentCount}</td><td>${psiLimit}</td><td>${f.effective.ks.toFixed(3)}</td><td>${status}</td></tr>`;
    })
    .join('');
  const missing = drift.missing.map((m) => `<tr><td>${escapeHtml(m)}</td><td colspan="7">not in the data: the model needs it</td><td><b>MISSING</b></td></tr>`).join('');
  const added = drift.added.map((a) => `<tr><td>${escapeHtml(a)}</td><td colspan="7">in the data, not in the model: a retrain would use it</td><td><b>NEW</b></td></tr>`).join('');
  return `<h2>${escapeHtml(heading)}</h2>
${chart}${note}
<table><tr><th>feature</th><th>PSI</th><th>KS</th><th>baseline mean</th><th>${escapeHtml(recentLabel)}</th><th>n</th><th>PSI drift above</th><th>KS drift above</th><th></th></tr>${rows}${missing}${added}</table>
`;
}

/** What cleaning did, one row per figure (it printed as raw JSON): per-feature counts and options spelled out. */
function cleaningTable(cleaning: Record<string, unknown>): string {
  const rows = Object.entries(cleaning).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(describeValue(v))}</td></tr>`);
  return rows.length === 0 ? 'not recorded' : `<table>${rows.join('')}</table>`;
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.map(describeValue).join(', ');
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.length === 0 ? 'none' : entries.map(([k, x]) => `${k} ${x !== null && typeof x === 'object' ? `(${describeValue(x)})` : describeValue(x)}`).join('; ');
  }
  return String(v);
}

export function renderReport(o: TrainOutcome): string {
  const r = o.record;
  const v = o.view;
  const title = `PumpWatch training report: ${o.source}`;
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px;color:#1c2024}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
.promoted{color:#18794e}.kept,.skipped,.warning{color:#ad5700}.legend span{display:inline-block;padding:0 6px;margin-right:8px}code{background:#f3f3f3;padding:0 3px}</style></head><body>`;
  if (!r || !v) {
    // A run skipped by --if-drifted still shows the drift figures that decided it.
    const drift = o.drift ? driftSection(o.drift, 'Drift of the range from the live model\'s baseline', 'recent mean') : '';
    const warnings = o.warnings.map((w) => `<p class="warning"><b>warning</b>: ${escapeHtml(w)}</p>\n`).join('');
    return `${head}<h1>${escapeHtml(title)}</h1><p class="${o.status}"><b>${o.status}</b>: ${escapeHtml(o.reason)}</p>\n${warnings}${drift}</body></html>\n`;
  }
  const spans = labelSpans(v.timestamps, v.targets);
  const charts = [v.challenger, v.champion]
    .filter((m): m is ScoredModel => m !== null && m.scores !== null)
    .map((m, i) => scoreChart({ title: `${i === 0 ? 'challenger' : 'live model'} ${m.version} (${m.algorithm}): held-out scores, threshold ${m.threshold}`, timestamps: v.timestamps, scores: m.scores as Float32Array, threshold: m.threshold, spans }))
    .join('\n');
  const d = r.data;
  return `${head}
<h1>${escapeHtml(title)}</h1>
<p class="${o.status}"><b>${escapeHtml(headline(o, r))}</b>: ${escapeHtml(o.reason)}</p>
${recordedLine(o) === null ? '' : `<p>${escapeHtml(recordedLine(o) as string)}</p>\n`}${labelsLine(o) === null ? '' : `<p><b>labels</b>: ${escapeHtml(labelsLine(o) as string)}</p>\n`}${o.retrained ? `<p><b>retrained</b>: ${escapeHtml(o.retrained)}</p>\n` : ''}${o.warnings.map((w) => `<p class="warning"><b>warning</b>: ${escapeHtml(w)}</p>`).join('\n')}
<h2>Comparison on the held-out rows</h2>
<p>${escapeHtml(r.evaluation.description)}. Each model is scored at its own threshold; the challenger must gain ${r.decision.margin} in ${metricName(r.evaluation.challenger.metric)}${
  r.decision.maxFar === undefined ? '' : `, and a model that flags more than ${r.decision.maxFar} % of the normal held-out rows (the false-alarm ceiling) neither keeps nor takes the place from one within it`
}${
  r.decision.maxAlarmsPerDay === undefined || r.decision.maxAlarmsPerDay === 0
    ? ''
    : `, nor does one whose runs of flagged normal rows (each an alert) are more than a model raising ${r.decision.maxAlarmsPerDay} false alarm${r.decision.maxAlarmsPerDay === 1 ? '' : 's'} a day would raise (the alarm ceiling)`
}.</p>
<table><tr><th></th><th>version</th><th>algorithm</th><th>threshold</th><th>${metricName(r.evaluation.challenger.metric)}</th><th>F1</th><th>FAR</th><th>MAR</th><th>TP/FP/FN/TN</th></tr>
${metricRow('challenger', v.challenger)}${metricRow('live model', v.champion)}</table>
${asAgentSection(r)}
<h2>Scores over time (held-out rows, ${escapeHtml(d.holdoutFrom)} → ${escapeHtml(d.holdoutTo)})</h2>
<p class="legend"><span style="background:#e5484d33">confirmed fault</span><span style="background:#30a46c26">false alarm (normal)</span><span style="background:#8b8d9833">maintenance</span><span style="background:#f5d90a40">no scored rows (dropped by cleaning, or a pause)</span>
dashed red line: threshold; red dots: flagged windows (the highest score of each pixel is drawn).</p>
${charts}
${o.drift ? driftSection(o.drift, `Drift of the held-out rows from the ${v.champion ? 'live model' : 'challenger'}'s baseline`, 'held-out mean') : ''}<h2>Data</h2>
<table>
<tr><th>range</th><td>${escapeHtml(d.from)} → ${escapeHtml(d.to)}</td></tr>
<tr><th>readings</th><td>${d.readings} from ${escapeHtml(d.devices.join(', '))}</td></tr>
<tr><th>trained on</th><td>${d.trainRows} rows, ${escapeHtml(d.trainFrom)} → ${escapeHtml(d.trainTo)}</td></tr>
<tr><th>held out</th><td>${d.holdoutRows} rows</td></tr>
<tr><th>features</th><td>${escapeHtml(r.features.join(', '))}${d.droppedFeatures.length ? ` (left out, too sparse: ${escapeHtml(d.droppedFeatures.join(', '))})` : ''}${d.staleFeatures?.length ? ` (left out, not in the most recent readings: ${escapeHtml(d.staleFeatures.join(', '))})` : ''}</td></tr>
<tr><th>cleaning</th><td>${cleaningTable(d.cleaning)}</td></tr>
<tr><th>trainer</th><td>${escapeHtml(r.trainer.version)}, seed ${r.trainer.seed}, ${escapeHtml(r.createdAt)}</td></tr>
</table>
</body></html>
`;
}
