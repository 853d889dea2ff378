/**
 * The "readings were evicted before they were uploaded; they are lost" warning covers evictions
 * in the first seconds after start (edgeHub replaying its backlog, a cap lowered at restart): the
 * baseline is taken when the buffer opens, not at the watch's first tick up to 10 s later, which
 * counted what the start evicted as the baseline and never told it. What the once-a-minute limit
 * still holds when the agent stops is told then.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel, normalValues, rng } from '../support/models.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

let dir: string;
let agent: Agent | null = null;

afterEach(async () => {
  await agent?.stop();
  agent = null;
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const r = rng(7);
const reading = (pumpId: string, ts: number) => {
  const values: Record<string, number> = normalValues(r, ts / 1000);
  for (let k = 0; k < 20; k++) values[`Sensor_${k}`] = Math.round(r() * 1e6) / 1e3;
  return { pumpId, ts, values };
};

describe('eviction warnings right after start', () => {
  it('tells readings evicted before the first tick, and at the stop what the minute\'s limit still held', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-evict-start-'));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    const lines: LogLine[] = [];
    const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info', PUMPWATCH_BUFFER_MAX_BYTES: '1048576' });
    const clock = { now: Date.now() };
    agent = new Agent({ config, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) }), defaultModelPath: join(dir, 'default-model.onnx'), clock: () => clock.now });
    await agent.start();
    await agent.scheduler.stop(); // the test runs the ticks itself
    const lost = (): number => {
      const e = agent!.buffer.stats().evicted;
      return e.unsynced + e.anomalies;
    };
    const fill = async (batches: number): Promise<void> => {
      for (let b = 0; b < batches; b++) {
        clock.now += 1000;
        await agent!.pipeline.ingest(Array.from({ length: 500 }, (_, k) => reading(`pump-${k % 5}`, clock.now - 500 + k)), 'test');
      }
    };
    const warnings = (): LogLine[] => lines.filter((l) => /evicted before they were uploaded/.test(l.msg));

    await fill(10); // before any tick of the watch
    const evicted = lost();
    expect(evicted).toBeGreaterThan(0);
    agent.evictionWatch.check(); // its first tick
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ level: 40, component: 'buffer' });
    expect(warnings()[0]!.evicted).toBeGreaterThanOrEqual(evicted);
    expect(warnings()[0]!.evicted).toBe(warnings()[0]!.evictedUnsyncedTotal);

    await fill(4); // more within the minute: held back by the rate limit
    agent.evictionWatch.check();
    expect(warnings()).toHaveLength(1);
    const total = lost();
    expect(total).toBeGreaterThan(evicted);
    await agent.stop();
    agent = null;
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]!.evictedUnsyncedTotal).toBe(total);
  });
});
