import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { SimulatedSource } from '../../agent/simulated-source.js';
import { SIMULATED_FEATURES } from '../../agent/simulator.js';

describe('SimulatedSource', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands every pump’s reading to the sink once per tick, stamped with the clock', async () => {
    const batches: Reading[][] = [];
    const source = new SimulatedSource({ pumps: 3, sink: async (r) => batches.push(r) });
    source.start();
    await vi.advanceTimersByTimeAsync(5000);
    await source.stop();
    expect(batches).toHaveLength(5);
    batches.forEach((batch, i) => {
      expect(batch.map((r) => r.pumpId)).toEqual(['sim-pump-1', 'sim-pump-2', 'sim-pump-3']);
      expect(batch.every((r) => r.ts === Date.UTC(2026, 0, 1) + (i + 1) * 1000)).toBe(true);
      for (const r of batch) expect(Object.keys(r.values)).toEqual([...SIMULATED_FEATURES]);
    });
    expect(batches[0]?.[0]?.values).not.toEqual(batches[0]?.[1]?.values);
    await vi.advanceTimersByTimeAsync(5000);
    expect(batches).toHaveLength(5);
  });

  it('ticks at ratePerPumpHz', async () => {
    let readings = 0;
    const source = new SimulatedSource({ pumps: 2, ratePerPumpHz: 4, sink: async (r) => (readings += r.length) });
    source.start();
    await vi.advanceTimersByTimeAsync(2000);
    await source.stop();
    expect(readings).toBe(2 * 8);
    expect(source.stats).toMatchObject({ ticks: 8, readings: 16, skippedTicks: 0 });
  });

  it('skips ticks while the sink is busy and stop() waits for the call in flight', async () => {
    let release: () => void = () => undefined;
    const calls: Reading[][] = [];
    const sink = (r: Reading[]): Promise<void> => {
      calls.push(r);
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    };
    const source = new SimulatedSource({ pumps: 2, sink });
    source.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect(calls).toHaveLength(1);
    expect(source.stats.skippedTicks).toBe(2);

    let stopped = false;
    const stopping = source.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(2000);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(stopped).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('keeps ticking after the sink fails, counting and logging the failure', async () => {
    const warnings: string[] = [];
    let n = 0;
    const source = new SimulatedSource({
      pumps: 1,
      sink: async () => {
        if (++n === 1) throw new Error('buffer full');
      },
      logger: { warn: (_obj, msg) => warnings.push(msg) },
    });
    source.start();
    await vi.advanceTimersByTimeAsync(3000);
    await source.stop();
    expect(n).toBe(3);
    expect(source.stats).toMatchObject({ sinkErrors: 1, readings: 2 });
    expect(warnings).toEqual(['simulated readings were not accepted by the sink']);
  });

  it('logs a failing sink once, then at most once a minute with the count, and once when it accepts again', async () => {
    const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    let failing = true;
    const source = new SimulatedSource({
      pumps: 2,
      sink: async () => {
        if (failing) throw new Error('the buffer is not open');
      },
      logger: {
        warn: (fields, msg) => lines.push({ level: 'warn', msg, fields: fields as Record<string, unknown> }),
        info: (fields, msg) => lines.push({ level: 'info', msg, fields: fields as Record<string, unknown> }),
      },
    });
    source.start();
    await vi.advanceTimersByTimeAsync(150_000); // 150 failing ticks
    failing = false;
    await vi.advanceTimersByTimeAsync(10_000);
    await source.stop();
    expect(source.stats).toMatchObject({ sinkErrors: 150, readings: 20 });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['warn', 'simulated readings were not accepted by the sink'],
      ['warn', 'simulated readings were not accepted by the sink (60 more in the last 60 s)'],
      ['warn', 'simulated readings were not accepted by the sink (60 more in the last 60 s)'],
      ['info', 'simulated readings are accepted again after 150 failures'],
    ]);
    expect(lines[1]!.fields).toMatchObject({ repeats: 60, failures: 61, readings: 2 });
  });

  it('records random faults of all pumps in its fault log', async () => {
    const source = new SimulatedSource({ pumps: 2, ratePerPumpHz: 0.1, faults: 'random', sink: async () => undefined });
    source.start();
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    await source.stop();
    const log = source.faultLog;
    expect(log.length).toBeGreaterThan(0);
    expect(new Set(log.map((e) => e.pumpId)).size).toBe(2);
    expect(log.map((e) => e.startTs)).toEqual([...log.map((e) => e.startTs)].sort((a, b) => a - b));
  });
  it('carries on with a new series from the new time after NTP steps the clock back 2 h, saying so once', async () => {
    const lines: string[] = [];
    const batches: Reading[][] = [];
    const source = new SimulatedSource({ pumps: 2, sink: async (r) => batches.push(r), logger: { warn: (_f, msg) => lines.push(msg) } });
    source.start();
    await vi.advanceTimersByTimeAsync(3000);
    const stepAt = Date.now();
    vi.setSystemTime(stepAt - 2 * 3_600_000);
    await vi.advanceTimersByTimeAsync(5000);
    await source.stop();
    // before: no reading for the length of the step, and a warning every second
    expect(batches).toHaveLength(8);
    expect(batches.slice(3).map((b) => b[0]!.ts)).toEqual([1, 2, 3, 4, 5].map((i) => stepAt - 2 * 3_600_000 + i * 1000));
    for (const b of batches.slice(3)) for (const r of b) expect(Object.values(r.values).every(Number.isFinite)).toBe(true);
    expect(lines).toEqual(['the clock stepped back by 120 min: the simulated pumps start a new series from the new time']);
  });

  it('refuses a rate so slow that its interval would not fit a timer (which would then fire every millisecond)', () => {
    expect(() => new SimulatedSource({ pumps: 1, ratePerPumpHz: 1e-7, sink: async () => undefined })).toThrow(/must be in \[0\.001, 1000\], got 1e-7/);
    expect(() => new SimulatedSource({ pumps: 1, ratePerPumpHz: 0.001, sink: async () => undefined })).not.toThrow();
  });
});
