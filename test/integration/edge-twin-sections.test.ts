/**
 * What the operator sees on the reported side for desired sections, with the agent as a module on
 * the local hub (the real azure-iot-device MQTT client): a section's reported `value` is the value
 * in force, not the desired text.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-sections';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
const logs: string[] = [];

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: DEVICE },
    { hubCa: hub.ca, logger: createLogger('warn', { write: (line: string) => logs.push(line) }) },
  );
  await until(() => expect(reported().state).toBeDefined());
});

afterAll(async () => {
  await t?.stop();
  await hub?.stop();
});

describe("a setting section's reported value", () => {
  it('is the value in force, not the desired text', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: '30 ' } });
    await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 30 }, ac: 200, av: v, ad: 'applied' }));
    expect(t.agent.config.syncIntervalSeconds).toBe(30);
  });
});
