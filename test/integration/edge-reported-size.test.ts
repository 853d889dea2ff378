/**
 * The reported properties stay within IoT Hub's 32 KB, with the real azure-iot-device MQTT client
 * against the local hub (which refuses, as IoT Hub does, an update that would grow them past it):
 * a gateway serving 1800 pumps lists the most recently active ones that fit, and its
 * acknowledgements keep arriving.
 */
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { twinSize } from '../../agent/local-hub/json.js';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import type { Logger } from '../../agent/logger.js';
import { postJson, startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub, type JsonObject } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-many';
const MODULE = 'pumpwatch';
const PUMPS = 1800; // 1800 ids of 19 characters: over 32 KB even as IoT Hub counts (no quotes or commas)
let hub: LocalHub;
let t: TestAgent;
let warn: MockInstance;
const random = rng(5);
let tick = 0;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const pumpId = (i: number) => `station-north-${String(i).padStart(5, '0')}`;
const reading = (id: string) => ({ pumpId: id, ts: new Date().toISOString(), values: normalValues(random, tick++) });
const truncationWarnings = () => warn.mock.calls.filter(([fields]) => (fields as { code?: string } | undefined)?.code === 'PW_EDGE_REPORTED_PUMPS_TRUNCATED');

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  t = await startHubAgent(hub, connectionString, DEVICE, { PUMPWATCH_MAX_PUMPS: '2000' });
  const runtime = edgeRuntimeOf(t.agent)!;
  warn = vi.spyOn((runtime as unknown as { log: Logger }).log, 'warn');
  await until(() => expect(reported().models?.default).toMatchObject({ status: 'active' }));
});

afterAll(async () => {
  await t?.stop();
  await hub?.stop();
});

describe('reported properties of a gateway serving many pumps', () => {
  it('lists the pumps while they fit', async () => {
    const r = await postJson(`${t.url}/readings`, [reading(pumpId(1)), reading(pumpId(2))]);
    expect(r.status).toBe(202);
    await until(() => expect(reported().pumps).toEqual([pumpId(1), pumpId(2)]));
    expect(reported()).not.toHaveProperty('pumpsTruncated');
    expect(truncationWarnings()).toHaveLength(0);
  });

  it('keeps the document under 32 KB with the most recently active pumps, and acknowledgements still arrive', async () => {
    // How many pumps each cut document the hub received listed: the first may come before the sync acknowledgement, with room for more.
    const listedByHub: number[] = [];
    hub.on('reported', (e: { deviceId: string; patch: Record<string, unknown> }) => {
      if (e.deviceId === DEVICE && e.patch.pumpsTruncated === true) listedByHub.push((e.patch.pumps as string[]).length);
    });
    const all = Array.from({ length: PUMPS }, (_, i) => reading(pumpId(i + 1)));
    expect((await postJson(`${t.url}/readings`, all)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 20));
    // the last pump by id, active most recently: listed although the list is cut
    expect((await postJson(`${t.url}/readings`, [reading(pumpId(PUMPS))])).status).toBe(202);

    const v = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 50 } });
    await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 50 }, ac: 200, av: v, ad: 'applied' }));
    await until(() => expect(reported()).toMatchObject({ pumpsTotal: PUMPS, pumpsTruncated: true }));
    await until(() => expect(reported().pumps).toContain(pumpId(PUMPS)));
    const pumps = reported().pumps as string[];
    expect(pumps.length).toBeGreaterThan(1000);
    expect(pumps.length).toBeLessThan(PUMPS);
    expect(pumps).toEqual([...pumps].sort());
    expect(twinSize(hub.reported(DEVICE, MODULE) as JsonObject)).toBeLessThanOrEqual(32 * 1024);
    expect(Buffer.byteLength(JSON.stringify(hub.reported(DEVICE, MODULE)))).toBeLessThanOrEqual(32 * 1024);

    expect(edgeRuntimeOf(t.agent)!.reporter.error()).toBeNull();
    expect(truncationWarnings()).toHaveLength(1);
    expect(truncationWarnings()[0]![0]).toMatchObject({ pumpsTotal: PUMPS, pumpsReported: listedByHub[0] });
  });
});
