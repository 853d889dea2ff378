/**
 * Ten model swaps while readings arrive at 10 000/s (as fast as this machine allows): every reading
 * is committed and scored, none fails, none is lost. bench/swap measures the stall; this only
 * counts outcomes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

const RATE = 10_000;
const PUMPS = 50;
let dir: string;
let server: ModelServer;
let agent: Agent;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-swapload-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'v0', window: 4 }));
  server = await ModelServer.start();
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_LOG_LEVEL: 'silent', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  agent = new Agent({ config, logger: createLogger('silent'), defaultModelPath: join(dir, 'bundled.onnx') });
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('hot-swap under load', () => {
  it('loses and fails no reading while the model changes ten times', async () => {
    const { updater } = createModelUpdater(agent);
    const random = rng(3);
    const counts = { submitted: 0, accepted: 0, failed: 0 };
    const pending = new Set<Promise<void>>();
    let running = true;
    const t0 = performance.now();
    const load = (async () => {
      while (running) {
        const due = Math.floor(((performance.now() - t0) / 1000) * RATE) - counts.submitted;
        if (due > 0) {
          const batch = Array.from({ length: due }, (_, k) => ({ pumpId: `pump-${(counts.submitted + k) % PUMPS}`, ts: Date.now(), values: normalValues(random, counts.submitted + k) }));
          counts.submitted += due;
          const p = agent.pipeline.ingest(batch, 'test').then((r) => void (counts.accepted += r.accepted), () => void (counts.failed += batch.length));
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        await new Promise((r) => setImmediate(r));
      }
    })();

    const versions: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const entry = server.add(`v${i}.onnx`, makeModel({ version: `v${i}`, window: 4, seed: 100 + i }), `v${i}`);
      updater.setDesired({ default: entry });
      await updater.idle();
      versions.push(`${agent.models.status().default!.version}:${agent.models.status().default!.status}`);
    }
    running = false;
    await load;
    await Promise.all([...pending]);
    await updater.stop();

    expect(versions).toEqual(Array.from({ length: 10 }, (_, i) => `v${i + 1}:active`));
    expect(counts.failed).toBe(0);
    expect(counts.accepted).toBe(counts.submitted);
    const stats = agent.buffer.stats();
    expect(stats.rows).toBe(counts.submitted);
    // Only each pump's first 3 readings go unscored, while its window of 4 fills: no swap leaves a gap.
    const unscored = agent.buffer.db.prepare('SELECT unscored_reason AS reason, count(*) AS n FROM readings WHERE score IS NULL GROUP BY 1').all();
    expect(unscored).toEqual([{ reason: 'window filling: 3 of 4 readings', n: PUMPS }, { reason: 'window filling: 2 of 4 readings', n: PUMPS }, { reason: 'window filling: 1 of 4 readings', n: PUMPS }].sort((a, b) => a.reason.localeCompare(b.reason)));
    const used = agent.buffer.db.prepare('SELECT DISTINCT model_version AS v FROM readings').all() as Array<{ v: string }>;
    expect(used.map((r) => r.v).sort()).toEqual(expect.arrayContaining(['v0', 'v10']));
  });
});
