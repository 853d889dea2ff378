/**
 * The report's drift section: the features the live model needs that the data no longer has,
 * the drift table of a run `--if-drifted` skipped, and the row count and thresholds behind each
 * verdict.
 */
import { describe, expect, it } from 'vitest';
import { baselineOf } from '../../trainer/drift/baseline.js';
import { compareWithBaseline, type DriftReport } from '../../trainer/drift/compare.js';
import type { Evaluation } from '../../trainer/eval/criterion.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { headline } from '../../trainer/report/headline.js';
import { renderReport } from '../../trainer/report/report.js';
import { scoreChart } from '../../trainer/report/svg.js';
import type { TrainOutcome } from '../../trainer/train/pipeline.js';

const rand = mulberry32(5);
const rows = (n: number) => Array.from({ length: n }, () => Float64Array.of(50 + rand(), 3 + rand() / 10, 7 + rand()));
/** The live model was trained on Flow, P and Old; the data no longer has Old. */
const liveBaseline = baselineOf(['Flow', 'P', 'Old'], rows(2000));
const drift = (n: number): DriftReport =>
  compareWithBaseline(
    liveBaseline,
    ['Flow', 'P'],
    rows(n).map((r) => r.subarray(0, 2)),
  );

const evaluation: Evaluation = { criterion: 'synthetic-faults', metric: 'balanced-accuracy', score: 0.9, f1: 0.8, far: 1, mar: 19, counts: { tp: 81, fp: 1, fn: 19, tn: 99 }, threshold: 1 };

function trained(d: DriftReport): TrainOutcome {
  const record: ModelRecord = {
    schema: 1,
    source: 'pump-m',
    version: 'v2',
    algorithm: 'mset-horizon',
    features: ['Flow', 'P'],
    window: 10,
    threshold: 1,
    model: { blob: 'models/pump-m/v2/model.onnx', sha256: '0'.repeat(64), size: 1 },
    data: {
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-01-02T00:00:00.000Z',
      readings: 1000,
      devices: ['gw-1'],
      droppedFeatures: [],
      cleaning: {},
      trainRows: 800,
      trainFrom: '2026-01-01T00:00:00.000Z',
      trainTo: '2026-01-01T18:00:00.000Z',
      holdoutRows: 200,
      holdoutFrom: '2026-01-01T18:00:00.000Z',
      holdoutTo: '2026-01-01T23:59:00.000Z',
    },
    evaluation: { criterion: 'synthetic-faults', description: 'synthetic faults', challenger: evaluation, champion: null, championVersion: 'v1' },
    decision: { promoted: true, reason: 'the live model v1 cannot score these rows (it needs Old, absent from the data)', margin: 0.01 },
    baseline: baselineOf(['Flow', 'P'], rows(100)),
    trainer: { version: 'test', seed: 1 },
    createdAt: '2026-01-02T00:00:00.000Z',
  };
  return {
    status: 'promoted',
    reason: record.decision.reason,
    source: 'pump-m',
    warnings: [],
    record,
    drift: d,
    view: {
      timestamps: [1, 2],
      targets: [null, null],
      challenger: { version: 'v2', algorithm: 'mset-horizon', threshold: 1, evaluation, scores: Float32Array.of(0.5, 0.6) },
      champion: { version: 'v1', algorithm: 'mset-horizon', threshold: 1, evaluation: null, scores: null },
    },
  };
}

/** The drift table's rows as [feature, …cells] (tags stripped). */
function driftRows(html: string): string[][] {
  const section = html.slice(html.indexOf('<h2>Drift'));
  const table = section.slice(section.indexOf('<table>'), section.indexOf('</table>'));
  return [...table.matchAll(/<tr>(.*?)<\/tr>/g)].slice(1).map((m) => [...(m[1] as string).matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => (c[1] as string).replace(/<[^>]+>/g, '')));
}

describe('the report drift section', () => {
  it('has a MISSING row for a feature the live model needs that the data no longer has', () => {
    const rowsOf = driftRows(renderReport(trained(drift(200))));
    expect(rowsOf.map((r) => r[0])).toEqual(['Flow', 'P', 'Old']);
    expect(rowsOf[2]).toEqual(['Old', 'not in the data: the model needs it', 'MISSING']);
    // n and the thresholds each feature was judged by.
    expect(rowsOf[0]!.slice(5, 8)).toEqual(['200', '0.250', '0.300']);
  });

  it('has a NEW row for a feature of the data that the live model lacks (a sensor added)', () => {
    const withNew = compareWithBaseline(baselineOf(['Flow', 'P'], rows(2000)), ['Flow', 'P', 'Vibration'], rows(200));
    const rowsOf = driftRows(renderReport(trained(withNew)));
    expect(rowsOf.map((r) => r[0])).toEqual(['Flow', 'P', 'Vibration']);
    expect(rowsOf[2]).toEqual(['Vibration', 'in the data, not in the model: a retrain would use it', 'NEW']);
  });

  it('shows the drift table of a run skipped by --if-drifted', () => {
    const d = compareWithBaseline(liveBaseline, ['Flow', 'P', 'Old'], rows(500));
    const html = renderReport({ status: 'skipped', reason: 'no drift from the baseline of live model v1: not retrained', source: 'pump-1', warnings: [], record: null, drift: d, view: null });
    expect(html).toContain('<h2>Drift of the range from the live model&#39;s baseline</h2>');
    const table = driftRows(html);
    expect(table.map((r) => [r[0], r[5], r.at(-1)])).toEqual([
      ['Flow', '500', 'ok'],
      ['P', '500', 'ok'],
      ['Old', '500', 'ok'],
    ]);
    expect(html).toContain('<svg');
    // Nothing computed, nothing shown.
    expect(renderReport({ status: 'skipped', reason: 'no readings', source: 'p', warnings: [], record: null, drift: null, view: null })).not.toContain('<h2>Drift');
  });

  it('says why a value on few rows was not called drift', () => {
    const html = renderReport(trained(drift(26)));
    expect(html).toContain('26 rows; drift: PSI &gt; 0.25 or KS &gt; 0.3, raised as below.');
    expect(html).toContain('with 26 rows against a baseline of 2000 rows (N) the thresholds are raised to what independent unchanged rows stay below 99.9 % of the time');
    expect(html).toContain('n_eff = n·N/(n+N)');
    const table = driftRows(html);
    expect(table[0]!.slice(5, 8)).toEqual(['26', 'not judged: too few rows', (1.95 / Math.sqrt((26 * 2000) / 2026)).toFixed(3)]);
    // No PSI bar chart when PSI was not judged.
    expect(html.slice(html.indexOf('<h2>Drift'))).not.toMatch(/<svg[^>]*aria-label="PSI/);
  });

  it('says, per feature, that KS cannot call drift where its threshold is 1 or more (3 rows: 1.95/√n_eff = 1.127)', () => {
    const html = renderReport(trained(drift(3)));
    const ks = (1.95 / Math.sqrt((3 * 2000) / 2003)).toFixed(3);
    expect(driftRows(html)[0]![7]).toBe(ks);
    for (const feature of ['Flow', 'P']) {
      expect(html).toContain(
        `<p>${feature}: KS cannot call drift: its threshold ${ks} is at least 1, the largest KS distance there is, because the 3 rows compared are too few (KS 1.95/√n_eff): KS can call drift in it from 4 rows on; compare a longer range; only the stuck/outlier rule can (PSI is not judged either).</p>`,
      );
    }
  });

  it("draws each feature's own PSI threshold as a tick on its bar, not one line at the lowest", () => {
    // P's threshold raised far above Flow's by a hand-made stray: a bar under its own threshold must not read as over a shared line.
    const nul = { version: 1 as const, factor: 1.5, sizes: [{ rows: 50, blocks: 40, psi: { Flow: 0.1, P: 2 }, ks: { Flow: 0.1, P: 0.5 } }] };
    const d = compareWithBaseline(liveBaseline, ['Flow', 'P'], rows(500).map((r) => r.subarray(0, 2)), undefined, [], { driftNull: nul });
    const html = renderReport(trained(d));
    const chart = html.slice(html.indexOf('aria-label="PSI per feature'));
    const ticks = [...chart.matchAll(/<title>(\w+): drift above ([\d.]+)<\/title>/g)].map((m) => [m[1], m[2]]);
    expect(ticks).toEqual(d.features.map((f) => [f.feature, (f.effective.psi as number).toFixed(3)]));
    expect(ticks.map((t) => t[1])).toEqual(['0.250', '3.000']);
    expect(chart.slice(0, chart.indexOf('</svg>'))).not.toContain('stroke-dasharray');
  });

  it('lays the cleaning out as a table, not as raw JSON', () => {
    const o = trained(drift(200));
    o.record!.data.cleaning = { inputRows: 1000, outputRows: 990, outliers: { Flow: 3 }, stuckValues: {}, options: { stuckRun: 30 } };
    const html = renderReport(o);
    expect(html).toContain(
      '<tr><th>cleaning</th><td><table><tr><th>inputRows</th><td>1000</td></tr><tr><th>outputRows</th><td>990</td></tr><tr><th>outliers</th><td>Flow 3</td></tr><tr><th>stuckValues</th><td>none</td></tr><tr><th>options</th><td>stuckRun 30</td></tr></table></td></tr>',
    );
    expect(html).not.toContain('{&#34;');
  });
});

describe('the score chart', () => {
  it('leaves out an axis label the threshold label would overlap (threshold 2.50 on an axis up to 251)', () => {
    const scores = Float32Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 251 : 200));
    const svg = scoreChart({ title: 't', timestamps: Array.from({ length: 200 }, (_, i) => i * 10_000), scores, threshold: 2.5, spans: [] });
    const labels = [...svg.matchAll(/<text x="52" y="([\d.]+)"[^>]*>([^<]+)<\/text>/g)].map((m) => [m[2], Number(m[1])] as const);
    expect(labels.map((l) => l[0])).toEqual(['2.50', '251']);
    // And both are kept where they do not meet.
    const apart = scoreChart({ title: 't', timestamps: [0, 10_000], scores: Float32Array.of(1, 2), threshold: 1.5, spans: [] });
    expect([...apart.matchAll(/<text x="52" y="[\d.]+"[^>]*>([^<]+)<\/text>/g)].map((m) => m[1])).toEqual(['1.50', '2.25', '0']);
  });
});

describe('the report header and the first line of train', () => {
  it('name the live model as kept and the challenger as not promoted, with the gist of the reason', () => {
    const o = trained(drift(200));
    const reason = 'v2 was rolled back from at 2026-12-07T10:00:00.000Z (best.json went to v1), and a version rolled back from is not promoted again by train (to make it best on purpose: pumpwatch-trainer rollback --source pump-m --version v2); without that: better on the held-out rows: …';
    const kept: TrainOutcome = { ...o, status: 'kept', reason, record: { ...o.record!, decision: { ...o.record!.decision, promoted: false, reason } } };
    const first = 'kept live v1; challenger v2 (mset-horizon, window 10, threshold 1) not promoted (rolled back from at 2026-12-07T10:00:00.000Z)';
    expect(headline(kept, kept.record!)).toBe(first);
    expect(renderReport(kept)).toContain(`<p class="kept"><b>${first}</b>: `);
    const margin = 'not better by the margin: synthetic-faults: challenger balanced accuracy 0.9 vs live 0.95, margin 0.01';
    expect(headline({ ...kept, reason: margin }, kept.record!)).toMatch(/; challenger v2 \(.*\) not promoted \(not better by the margin\)$/);
    const same = { ...kept.record!, evaluation: { ...kept.record!.evaluation, championVersion: 'v2' } };
    expect(headline({ ...kept, reason: 'the challenger is the live model itself (version v2)' }, same)).toBe('kept live v2 (mset-horizon, window 10, threshold 1): the challenger is that very version');
    expect(headline(o, o.record!)).toBe('promoted v2 (mset-horizon, window 10, threshold 1)');
  });
});
