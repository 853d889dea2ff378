/**
 * PUMPWATCH_SYNC_SLOW_RETRY_SECONDS (README, "Backoff": errors that need a person are retried only
 * every this many seconds, never sooner, up to 10 % later at random): the agent syncing to a real
 * Azurite through a container SAS URL without the right to create its missing container. What is
 * checked is the agent's own schedule (`/status` sync.lastErrorAt and nextAttemptAt, one timer
 * apart), not how long anything took: the test waits for no retry.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { normalValues, rng } from '../support/models.js';

const SLOW_S = 600;
/** An anomaly for the test model (as in edge.test.ts): it asks for a sync cycle at once. */
const SPIKE = { Pressure: 4, Flow: 30, Current: 1.4 };
let az: TestAzurite;
let t: TestAgent;
const sync = async (): Promise<Record<string, any>> => ((await (await fetch(`${t.url}/status`)).json()) as { sync: Record<string, any> }).sync;
const connectivity = async (): Promise<string> => ((await (await fetch(`${t.url}/status`)).json()) as { connectivity: { blob: string } }).connectivity.blob;

beforeAll(async () => {
  az = await startTestAzurite();
  t = await startTestAgent({
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_SAS_URL: az.containerSasUrl('never-made'), // racwl: no right to create it
    PUMPWATCH_DEVICE_ID: 'gw-slow-retry',
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS: '1',
    PUMPWATCH_SYNC_SLOW_RETRY_SECONDS: String(SLOW_S),
  });
});

afterAll(async () => {
  await t?.stop();
  await az?.dispose();
});

describe('PUMPWATCH_SYNC_SLOW_RETRY_SECONDS', () => {
  it('schedules the next attempt after a missing container no sooner than the setting and at most 10 % later, and an anomaly does not bring it forward', async () => {
    const r = await postJson(`${t.url}/readings`, [{ pumpId: 'pump-s', ts: new Date().toISOString(), values: normalValues(rng(3), 0) }]);
    expect(r.json).toMatchObject({ accepted: 1 });
    await vi.waitFor(async () => expect(await connectivity()).toBe('container-missing'), { timeout: 30_000, interval: 100 });
    const blocked = await sync();
    expect(blocked).toMatchObject({ state: 'blocked', lastError: expect.stringMatching(/never-made/) });
    const delayMs = Date.parse(blocked.nextAttemptAt) - Date.parse(blocked.lastErrorAt);
    expect(delayMs).toBeGreaterThanOrEqual(SLOW_S * 1000);
    expect(delayMs).toBeLessThanOrEqual(SLOW_S * 1100 + 1000); // + the moment between the two records

    // a committed anomaly starts a cycle at once, but not while a person must act
    expect((await postJson(`${t.url}/readings`, [{ pumpId: 'pump-s', ts: new Date().toISOString(), values: SPIKE }])).json).toMatchObject({ accepted: 1 });
    expect(await sync()).toMatchObject({ state: 'blocked', nextAttemptAt: blocked.nextAttemptAt, lastErrorAt: blocked.lastErrorAt });
  });
});
