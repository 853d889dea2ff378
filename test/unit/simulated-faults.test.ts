import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENDED_FAULTS_KEPT } from '../../agent/simulated-faults.js';
import { SimulatedSource } from '../../agent/simulated-source.js';

const T0 = Date.UTC(2026, 0, 1);
const PERIOD_MS = 10_000;

interface Line {
  fields: Record<string, unknown>;
  msg: string;
}

/** One simulated pump with random faults, run for `hours` on fake timers; its info lines. */
async function run(hours: number): Promise<{ source: SimulatedSource; lines: Line[] }> {
  const lines: Line[] = [];
  const logger = { warn: () => undefined, info: (fields: object, msg: string) => lines.push({ fields: fields as Record<string, unknown>, msg }) };
  const source = new SimulatedSource({ pumps: 1, ratePerPumpHz: 1000 / PERIOD_MS, faults: 'random', meanFaultIntervalMs: 20 * 60_000, sink: async () => undefined, logger });
  source.start();
  await vi.advanceTimersByTimeAsync(hours * 3_600_000);
  await source.stop();
  return { source, lines };
}

describe('SimulatedSource: the faults it injected', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs each fault onset with its peak and planned end, and its end on the first reading past it', async () => {
    const { source, lines } = await run(12);
    const now = Date.now();
    const onsets = lines.filter((l) => l.fields.event === 'simulated-fault-onset');
    const ends = lines.filter((l) => l.fields.event === 'simulated-fault-end');
    const log = source.faultLog;
    expect(log.length).toBeGreaterThan(ENDED_FAULTS_KEPT);
    expect(onsets.map((l) => `${String(l.fields.kind)} ${String(l.fields.since)} ${String(l.fields.plannedEnd)}`)).toEqual(
      log.map((e) => `${e.kind} ${new Date(e.startTs).toISOString()} ${new Date(e.endTs).toISOString()}`),
    );
    for (const l of onsets) {
      expect(l.fields).toMatchObject({ pumpId: 'sim-pump-1' });
      expect(l.fields.peak).toBeGreaterThan(0);
      expect(l.fields.peak).toBeLessThanOrEqual(1);
    }
    const over = log.filter((e) => e.endTs <= now - PERIOD_MS);
    expect(ends.map((l) => `${String(l.fields.kind)} ${String(l.fields.since)}`)).toEqual(
      [...over].sort((a, b) => a.endTs - b.endTs).map((e) => `${e.kind} ${new Date(e.startTs).toISOString()}`),
    );
    for (const l of ends) {
      const ended = Date.parse(String(l.fields.ended));
      const planned = Date.parse(String(l.fields.plannedEnd));
      expect(ended - planned).toBeGreaterThanOrEqual(0);
      expect(ended - planned).toBeLessThan(PERIOD_MS);
    }
  });

  it('shows per pump the faults under way, with their severity now, and the last ones ended, newest first', async () => {
    const { source, lines } = await run(12);
    const view = source.faults['sim-pump-1'];
    const now = Date.now();
    const underWay = source.faultLog.filter((e) => e.startTs <= now && now < e.endTs);
    expect(view?.current.map((f) => `${f.kind} ${f.since}`).sort()).toEqual(underWay.map((e) => `${e.kind} ${new Date(e.startTs).toISOString()}`).sort());
    for (const f of view?.current ?? []) {
      expect(f.severity).toBeGreaterThanOrEqual(0);
      expect(f.severity).toBeLessThanOrEqual(f.peak);
    }
    const ends = lines.filter((l) => l.fields.event === 'simulated-fault-end').reverse().slice(0, ENDED_FAULTS_KEPT);
    expect(view?.recentEnded).toEqual(ends.map((l) => ({ kind: l.fields.kind, since: l.fields.since, ended: l.fields.ended, peak: l.fields.peak })));
  });
});
