/**
 * A site whose sensors have their own names (commissioning review, H1): the default model scores
 * none of its pumps. Before, every post got 202, /healthz stayed ok and each card said only "No value
 * known yet for feature …". Now /healthz is degraded (`scoring`) once pumps have sent unscored for
 * the not-scored delay, and /pumps says which of the model's sensors each pump lacks.
 * A real agent (SQLite, onnxruntime), its monotonic clock injected to pass the delay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { packageRoot } from '../../agent/paths.js';
import { postJson, startTestAgent, testAgentConfig, type TestAgent } from '../support/agent.js';
import { rng } from '../support/models.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

const SITE = ['SuctionPressure_bar', 'DischargePressure_bar', 'MotorCurrent_A', 'BearingTemp_DE_C', 'Vibration_mm_s', 'Flow_m3h'];
const PUMPS = ['site-1', 'site-2', 'site-3', 'site-4', 'site-5', 'site-6'];

let t: TestAgent;
let skew = 0;
let tsNext = Date.now() - 60_000;

beforeAll(async () => {
  t = await startTestAgent({ PUMPWATCH_ALERTS_NOT_SCORED_AFTER_SECONDS: '60' }, { monotonic: () => performance.now() + skew });
});
afterAll(async () => t?.stop());

const siteValues = () => Object.fromEntries(SITE.map((n, i) => [n, 1 + i]));

async function post(pumps: string[], values: () => Record<string, number | null>): Promise<void> {
  const ts = new Date((tsNext += 1000)).toISOString();
  const r = await postJson(`${t.url}/readings`, pumps.map((pumpId) => ({ pumpId, ts, values: values() })));
  expect(r.status).toBe(202);
}

const healthz = async () => (await (await fetch(`${t.url}/healthz`)).json()) as { status: string; degraded: string[]; checks: Record<string, string> };
const pumps = async () => ((await (await fetch(`${t.url}/pumps`)).json()) as { pumps: Array<{ pumpId: string; state: string; lackedSensors: unknown }> }).pumps;

describe("a site whose sensors are not the default model's names", () => {
  it('is degraded on /healthz after the not-scored delay, saying the default model needs sensors the pumps do not send, and ok once scored', async () => {
    await post(PUMPS, siteValues);
    expect((await healthz()).checks.scoring).toBe('ok'); // not before the delay
    skew += 61_000;
    await post(PUMPS, siteValues);
    const h = await healthz();
    expect(h.status).toBe('degraded');
    expect(h.degraded).toContain('scoring');
    expect(h.checks.scoring).toBe(
      '6 pumps sending with none of their readings scored for over 1 min: the default model needs sensors these pumps do not send (Pressure, Flow, Current): deploy a model of their own, or fit one for the site (README "Commissioning a site whose sensors have their own names")',
    );
    const cards = (await pumps()).filter((p) => PUMPS.includes(p.pumpId));
    expect(cards).toHaveLength(6);
    for (const c of cards) {
      expect(c.state).toBe('not-scored');
      expect(c.lackedSensors).toEqual({ lacks: ['Pressure', 'Flow', 'Current'], sends: [], others: [...SITE].sort() });
    }
    // the pumps now send the model's names as well: scored, the check is ok again
    await post(PUMPS, () => ({ ...siteValues(), Pressure: 1.4, Flow: 30, Current: 1.4 }));
    expect((await healthz()).checks.scoring).toBe('ok');
    expect((await pumps()).filter((p) => PUMPS.includes(p.pumpId)).every((p) => p.lackedSensors === null)).toBe(true);
  });

  it("names the model's sensors a pump sends beside the one it lacks", async () => {
    await post(['part-1'], () => ({ Pressure: 1.4, Flow: 30, MotorCurrent_A: 1.4 }));
    skew += 61_000;
    await post(['part-1'], () => ({ Pressure: 1.4, Flow: 30, MotorCurrent_A: 1.4 }));
    expect((await healthz()).checks.scoring).toBe(
      '1 pump sending with none of its readings scored for over 1 min: the default model needs sensors these pumps do not send (Current): deploy a model of their own, or fit one for the site (README "Commissioning a site whose sensors have their own names")',
    );
    expect((await pumps()).find((p) => p.pumpId === 'part-1')!.lackedSensors).toEqual({ lacks: ['Current'], sends: ['Pressure', 'Flow'], others: ['MotorCurrent_A'] });
    await post(['part-1'], () => ({ Pressure: 1.4, Flow: 30, Current: 1.4 }));
    expect((await healthz()).checks.scoring).toBe('ok');
  });
});

describe('a default model set with PUMPWATCH_DEFAULT_MODEL (one fitted for the site)', () => {
  it('is named on /pumps by its file, so the page does not call it the generic model fitted on simulated pumps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-site-model-'));
    const file = join(dir, 'site-model.onnx');
    // the site's own history, fitted by the trainer's CLI as README "Commissioning a site…" says
    const random = rng(11);
    const lines = ['timestamp,SuctionPressure_bar,MotorCurrent_A,Flow_m3h'];
    for (let i = 0; i < 600; i++) lines.push(`${new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString()},${(1.4 + random() * 0.1).toFixed(3)},${(1.4 + random() * 0.1).toFixed(3)},${(30 + random()).toFixed(3)}`);
    writeFileSync(join(dir, 'site-history.csv'), lines.join('\n') + '\n');
    execFileSync(process.execPath, [join(packageRoot(), 'dist/trainer/cli.js'), 'fit', '--csv', join(dir, 'site-history.csv'), '--version', 'site-1', '--out', file]);
    const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_DEFAULT_MODEL: file });
    const agent = new Agent({ config, logger: createLogger(config.logLevel) });
    try {
      await agent.start();
      const url = `http://127.0.0.1:${agent.httpAddress()!.port}`;
      const r = await postJson(`${url}/readings`, [{ pumpId: 'site-1', ts: new Date().toISOString(), values: { SuctionPressure_bar: 1.4, MotorCurrent_A: 1.4, Flow_m3h: 30 } }]);
      expect(r.status).toBe(202);
      const body = (await (await fetch(`${url}/pumps`)).json()) as { pumps: Array<{ pumpId: string; state: string; model: { key: string; version: string; defaultFile: string | null } }> };
      const card = body.pumps.find((p) => p.pumpId === 'site-1')!;
      expect(card.model).toMatchObject({ key: 'default', version: 'site-1', defaultFile: 'site-model.onnx' });
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a pump in its model\'s warm-up after a stop', () => {
  it('does not make /healthz degraded: the stop rule at work is not a site left unscored', async () => {
    let skewed = 0;
    const model = stopModels({ version: 'warm-1', window: 1, rule: { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 600 } }).withRule;
    const agent = await startTestAgent({ PUMPWATCH_ALERTS_NOT_SCORED_AFTER_SECONDS: '60' }, { model, monotonic: () => performance.now() + skewed });
    try {
      // stopped for 10 readings, then running: its next 600 s of readings are its warm-up, stored unscored
      const rs = readingsWithStops(200, (i) => i < 10, { pumpId: 'warm', start: Date.now() - 300_000 }).map((r) => ({ ...r, ts: new Date(r.ts).toISOString() }));
      expect((await postJson(`${agent.url}/readings`, rs.slice(0, 100))).status).toBe(202);
      // the board follows readings from its first look (the wall clock does not move with `skewed`)
      expect(((await (await fetch(`${agent.url}/healthz`)).json()) as { checks: Record<string, string> }).checks.scoring).toBe('ok');
      skewed += 61_000;
      expect((await postJson(`${agent.url}/readings`, rs.slice(100))).status).toBe(202);
      const last = ((await (await fetch(`${agent.url}/pumps`)).json()) as { pumps: Array<{ pumpId: string; state: string; detail: string }> }).pumps.find((p) => p.pumpId === 'warm')!;
      expect(last.detail).toMatch(/^pump starting: /);
      const hz = (await (await fetch(`${agent.url}/healthz`)).json()) as { checks: Record<string, string> };
      expect(hz.checks.scoring).toBe('ok');
    } finally {
      await agent.stop();
    }
  });
});
