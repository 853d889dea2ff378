/**
 * The agent as a process, its default model fitted by the trainer with a stopped-when rule: a
 * pump's planned stop is stored unscored, raises no alert, and the page's API says the pump is
 * stopped since its first stopped reading, also after a restart; the same model without the rule
 * alerts on the stop (what the rule prevents).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { agentPool, getJson, postReadings, stopAgent } from '../support/agent-http.js';
import type { AgentProcess } from '../support/process.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let dir: string;
let withRule: string;
let withoutRule: string;
const pool = agentPool();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-stopped-'));
  const models = stopModels({ version: 'stops-e2e' });
  withRule = join(dir, 'with-rule.onnx');
  withoutRule = join(dir, 'without-rule.onnx');
  writeFileSync(withRule, models.withRule);
  writeFileSync(withoutRule, models.withoutRule);
});

afterAll(async () => {
  await pool.killAll();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const start = (model: string, dataDir: string): Promise<AgentProcess> => pool.start({ PUMPWATCH_DATA_DIR: dataDir, PUMPWATCH_DEFAULT_MODEL: model });
const stop = stopAgent;
const post = (agent: AgentProcess, readings: readonly Reading[]): Promise<void> => postReadings(agent, readings, Infinity);

/** 400 readings at 1 Hz ending a minute ago: running 0-199, stopped from 200 on. */
const START = Date.now() - 460_000;
const STOPPED_FROM = 200;
const readings = readingsWithStops(400, (i) => i >= STOPPED_FROM, { pumpId: 'pump-7', start: START });

describe('a stopped pump, the agent as a process', () => {
  it('stores the stop unscored, raises no alert, and says "stopped" since its first stopped reading, after a restart too', async () => {
    const data = join(dir, 'with-rule');
    const agent = await start(withRule, data);
    await post(agent, readings);
    const { pumps } = await getJson(agent, '/pumps');
    const p = pumps.find((x: { pumpId: string }) => x.pumpId === 'pump-7');
    expect(p).toMatchObject({ state: 'stopped', running: false, stoppedSince: new Date(START + STOPPED_FROM * 1000).toISOString(), anomalySince: null, lastAlertAt: null });
    expect(p.detail).toMatch(/^pump stopped: "Current" = 0\.0\d+, below 0\.5 \(model stops-e2e's stopped-when rule\)$/);
    expect((await getJson(agent, '/alerts')).alerts).toEqual([]);
    const { predictions } = await getJson(agent, '/pumps/pump-7/predictions?limit=1000');
    const stopped = predictions.filter((r: { unscoredReason: string | null }) => r.unscoredReason?.startsWith('pump stopped: '));
    expect(stopped).toHaveLength(400 - STOPPED_FROM);
    expect(stopped.every((r: { score: number | null; anomaly: boolean | null }) => r.score === null && r.anomaly === null)).toBe(true);
    expect(predictions.filter((r: { anomaly: boolean | null }) => r.anomaly === true)).toEqual([]);
    await stop(agent);

    // Restarted: the page still says stopped since the same reading; the pump runs again, warms up (30 s), is scored.
    const again = await start(withRule, data);
    const after = (await getJson(again, '/pumps')).pumps.find((x: { pumpId: string }) => x.pumpId === 'pump-7');
    expect(after).toMatchObject({ state: 'stopped', running: false, stoppedSince: p.stoppedSince });
    const running = readingsWithStops(40, () => false, { pumpId: 'pump-7', start: START + 400_000, seed: 3 });
    await post(again, running);
    const { predictions: later } = await getJson(again, `/pumps/pump-7/predictions?since=${encodeURIComponent(new Date(START + 400_000).toISOString())}&limit=100`);
    expect(later.slice(0, 29).every((r: { unscoredReason: string | null }) => r.unscoredReason?.startsWith('pump starting: '))).toBe(true);
    expect(later.at(-1).score).not.toBeNull();
    const now = (await getJson(again, '/pumps')).pumps.find((x: { pumpId: string }) => x.pumpId === 'pump-7');
    expect(now).toMatchObject({ state: 'normal', running: true, stoppedSince: null });
    expect((await getJson(again, '/alerts')).alerts).toEqual([]);
    await stop(again);
  });

  it('alerts on the stop with the same model without the rule', async () => {
    const agent = await start(withoutRule, join(dir, 'without-rule'));
    await post(agent, readings);
    const { pumps } = await getJson(agent, '/pumps');
    expect(pumps.find((x: { pumpId: string }) => x.pumpId === 'pump-7')).toMatchObject({ state: 'anomaly', running: null, stoppedSince: null });
    expect((await getJson(agent, '/alerts')).alerts.length).toBeGreaterThan(0);
    await stop(agent);
  });

  it('scores a pump at once after a restart that follows a step back of its sender\'s clock', async () => {
    const start0 = Date.now() - 3 * 3_600_000;
    // running 0-199, stopped 200-299 (a stop that counts: 30 s of warm-up after it), running 300-399
    const before = readingsWithStops(400, (i) => i >= 200 && i < 300, { pumpId: 'pump-9', start: start0 });
    const data = join(dir, 'clock-step');
    const agent = await start(withRule, data);
    await post(agent, before);
    // the sender's clock steps back an hour; its readings go on live at 1 Hz: the agent takes the new clock after a few
    const back = start0 + 400_000 - 3_600_000;
    const after = readingsWithStops(200, () => false, { pumpId: 'pump-9', start: back, seed: 4 });
    for (const r of after.slice(0, 4)) {
      await post(agent, [r]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    await post(agent, after.slice(4, 100));
    const since = (ts: number) => `/pumps/pump-9/predictions?since=${encodeURIComponent(new Date(ts).toISOString())}&limit=1000`;
    const live = (await getJson(agent, since(back))).predictions.filter((p: { ts: string }) => Date.parse(p.ts) < back + 100_000);
    expect(live.slice(-50).every((p: { score: number | null }) => p.score !== null)).toBe(true);
    await stop(agent);
    const again = await start(withRule, data);
    await post(again, after.slice(100));
    const rest = (await getJson(again, since(back + 100_000))).predictions.filter((p: { ts: string }) => Date.parse(p.ts) < back + 200_000);
    expect(rest).toHaveLength(100);
    // before the fix: every one "pump starting: 0 s since its last stopped reading at <an hour ahead>"
    expect(rest.filter((p: { score: number | null }) => p.score === null).map((p: { unscoredReason: string }) => p.unscoredReason)).toEqual([]);
    await stop(again);
  });

  it('warms a pump up after a stop when its current comes in every other reading only', async () => {
    const agent = await start(withRule, join(dir, 'every-other'));
    const start0 = Date.now() - 3_600_000;
    const rs = readingsWithStops(500, (i) => i >= 200 && i < 300, { pumpId: 'pump-5', start: start0 });
    for (let i = 1; i < rs.length; i += 2) delete (rs[i]!.values as Record<string, number | null>).Current;
    await post(agent, rs);
    const { predictions } = await getJson(agent, '/pumps/pump-5/predictions?limit=1000');
    const kind = (p: { score: number | null; unscoredReason: string | null }) => (p.score !== null ? 'scored' : (p.unscoredReason ?? '').replace(/:.*/, ''));
    // 30 s of warm-up after the last stopped reading (298): 300-327; before the fix none, the pump scored from 304
    const after = predictions.filter((p: { ts: string }) => Date.parse(p.ts) >= start0 + 300_000 && Date.parse(p.ts) < start0 + 328_000);
    expect(after.map(kind)).toEqual(after.map(() => 'pump starting'));
    expect(predictions.filter((p: { anomaly: boolean | null }) => p.anomaly === true)).toEqual([]);
    await stop(agent);
  });
});
