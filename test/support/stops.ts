/**
 * Pumps that stop and start, for the stopped-when rule's tests: training tables and readings with
 * stop periods (current, flow and pressure near zero), set directly, not simulated.
 */
import type { Reading } from '../../buffer/types.js';
import { contractFor, metadataToProps, type StoppedRule, type StuckAfter } from '../../inference/contract.js';
import type { CsvTable } from '../../trainer/csv.js';
import { fitTable, type FitResult } from '../../trainer/fit.js';
import type { ContainerClient } from '@azure/storage-blob';
import { normalValues, rewritten, rng, TEST_FEATURES } from './models.js';
import { pumpValues, seedReadings } from './trainer.js';

export const STOP_RULE: StoppedRule = { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 30 };

/** A stopped pump's reading: no flow, no pressure, a little current left (running: about 1.4). */
export function stoppedValues(r: () => number): Record<string, number> {
  return { Pressure: 0.002 * r(), Flow: 0, Current: 0.02 + 0.01 * r() };
}

/** `n` readings one second apart from `start`, stopped where `stopped(i)` says. */
export function readingsWithStops(n: number, stopped: (i: number) => boolean, opts: { seed?: number; start?: number; pumpId?: string } = {}): Reading[] {
  const r = rng(opts.seed ?? 21);
  const start = opts.start ?? Date.UTC(2026, 5, 1);
  return Array.from({ length: n }, (_, i) => ({ pumpId: opts.pumpId ?? 'p1', ts: start + i * 1000, values: stopped(i) ? stoppedValues(r) : normalValues(r, i) }));
}

/** Makes `feature` silent (null) in the readings at `indices` of `rs`, in place: a sensor that did not report. */
export function silence(rs: Reading[], feature: string, indices: Iterable<number>): void {
  for (const i of indices) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, [feature]: null } };
}

/** A training table of `n` rows one second apart, stopped where `stopped(i)` says. */
export function tableWithStops(n: number, stopped: (i: number) => boolean, seed = 7): CsvTable {
  const rows = readingsWithStops(n, stopped, { seed, start: Date.UTC(2026, 0, 1) });
  return {
    features: [...TEST_FEATURES],
    rows: rows.map((row) => Float64Array.from(TEST_FEATURES, (f) => row.values[f] as number)),
    timestamps: rows.map((row) => row.ts),
    timestampColumn: 'timestamp',
    ignoredColumns: [],
  };
}

/** The table as a CSV file's text (`timestamp` column, ISO times). */
export function tableCsv(table: CsvTable): string {
  const lines = [['timestamp', ...table.features].join(',')];
  table.rows.forEach((row, i) => lines.push([new Date(table.timestamps[i]!).toISOString(), ...Array.from(row, (v) => String(v))].join(',')));
  return `${lines.join('\n')}\n`;
}

/**
 * A model fitted by the trainer with STOP_RULE on a table with stops (left out of training), and
 * the very same model without the rule in its metadata (so a test can show the rule is what
 * keeps a stop from being flagged). `stuckAfter`: its frozen-sensor bounds, given to the trainer
 * (else the ones it finds in the table, 60 readings each).
 */
export function stopModels(opts: { version?: string; window?: number; rule?: StoppedRule; stuckAfter?: StuckAfter } = {}): { withRule: Uint8Array; withoutRule: Uint8Array; fit: FitResult } {
  const table = tableWithStops(1500, (i) => i >= 500 && i < 650);
  const fit = fitTable(table, { version: opts.version ?? 'stops-1', window: opts.window ?? 5, algorithm: 'pca', stoppedWhen: opts.rule ?? STOP_RULE, leaveOutStopped: true, ...(opts.stuckAfter ? { stuckAfter: opts.stuckAfter } : {}) });
  const { stoppedWhen: _rule, ...rest } = fit.metadata;
  // the contract the trainer would give the model without the rule
  const withoutRule = rewritten(fit, metadataToProps({ ...rest, contract: contractFor(rest), version: `${rest.version}-norule` }), 'without its stopped-when rule');
  return { withRule: fit.bytes, withoutRule, fit };
}

/**
 * A pump's uploaded readings for `train`: two days at 20 s from `t0`, stopped one hour in six (180
 * readings of 1 080), then a day stopped half the time (seq on from 8 641).
 */
export async function seedPumpWithStops(container: ContainerClient, pumpId: string, t0: number): Promise<void> {
  const r = rng(5);
  const value = (i: number, stopped: boolean) => (stopped ? stoppedValues(r) : pumpValues(r, i, 30));
  await seedReadings(container, pumpId, 'gw-1', t0, 8640, (i) => value(i, i % 1080 < 180));
  await seedReadings(container, pumpId, 'gw-1', t0 + 2 * 86_400_000, 4320, (i) => value(i, i % 360 < 180), { seq0: 8641 });
}
