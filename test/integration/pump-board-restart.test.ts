/**
 * The page's latched alarm across an agent restart, with a real agent on a data dir and a model the
 * trainer fitted with a stopped-when rule: a pump that stopped while in anomaly stays in anomaly
 * (only normal readings clear an alarm), also when its stop outlasts the 200 rows the board reads
 * back at start-up.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { postJson, testAgentConfig } from '../support/agent.js';
import { rng } from '../support/models.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-board-restart-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, stopModels({ version: 'latch-1' }).withRule);
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

async function startAgent(): Promise<{ agent: Agent; url: string }> {
  const agent = new Agent({ config: testAgentConfig(join(dir, 'data')), logger: createLogger('silent'), defaultModelPath: model });
  await agent.start();
  return { agent, url: `http://127.0.0.1:${agent.httpAddress()!.port}` };
}

const pumpOf = async (url: string, pumpId: string): Promise<Record<string, unknown>> =>
  ((await (await fetch(`${url}/pumps`)).json()) as { pumps: Array<Record<string, unknown>> }).pumps.find((p) => p.pumpId === pumpId)!;

describe('the page\'s latched alarm after a restart', () => {
  it('keeps a pump that stopped in anomaly, with more than 200 stopped readings since, in anomaly with the same anomalySince', async () => {
    // 1 s apart, ending a minute ago: running 0-59, running far off its normal (anomalous) 60-99, stopped 100-499
    const n = 500;
    const r = rng(3);
    const rs = readingsWithStops(n, (i) => i >= 100, { pumpId: 'pump-9', start: Date.now() - 60_000 - n * 1000 }).map((x, i) =>
      i >= 60 && i < 100 ? { ...x, values: { Pressure: 6 + r(), Flow: 90 + r(), Current: 4 + r() } } : x,
    );
    const first = await startAgent();
    let since: unknown;
    try {
      expect((await postJson(`${first.url}/readings`, rs.slice(0, 100))).json.accepted).toBe(100);
      const alarmed = await pumpOf(first.url, 'pump-9');
      expect(alarmed).toMatchObject({ state: 'anomaly', anomalySinceAtLeast: false });
      since = alarmed.anomalySince;
      expect(typeof since).toBe('string');
      expect((await postJson(`${first.url}/readings`, rs.slice(100))).json.accepted).toBe(400);
      // the stop does not clear the alarm while the agent runs
      expect(await pumpOf(first.url, 'pump-9')).toMatchObject({ state: 'anomaly', anomalySince: since, running: false });
    } finally {
      await first.agent.stop();
    }
    const second = await startAgent();
    try {
      // before: "stopped", anomalySince null (the 200 rows read back at start-up held no verdict)
      expect(await pumpOf(second.url, 'pump-9')).toMatchObject({ state: 'anomaly', anomalySince: since, anomalySinceAtLeast: false, running: false });
    } finally {
      await second.agent.stop();
    }
  });
});
