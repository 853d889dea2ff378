/**
 * The whole loop in one test, every part real: readings posted to a real agent are scored,
 * buffered in SQLite and synced to Azurite; the trainer reads them back from the blobs, trains a
 * model for that pump, promotes it in the registry and deploys it through the local hub's twin
 * (azure-iothub Registry over HTTPS); the agent, connected to the hub with the real
 * azure-iot-device MQTT client, downloads it from Azurite with the SAS URL, checks and swaps it,
 * reports it active, and scores the next readings of that pump with it. The gateway uploads with
 * the container SAS the field gives it (sp=rcw), and the registry is in a container of its own,
 * which that SAS cannot write.
 */
import { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TwinRegistry } from '../../trainer/cloud/context.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { postJson, startHubAgent, type TestAgent } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';
import { hubRegistry, runTrainer, trainerContext } from '../support/trainer.js';

const DEVICE = 'gw-loop';
const MODULE = 'pumpwatch';
const PUMP = 'pump-loop';
const CONTAINER = 'e2e-loop';
const DAY = 86_400_000;
/** Yesterday 00:00 UTC: the readings are history the trainer can take by whole days. */
const START = Math.floor(Date.now() / DAY) * DAY - DAY;
const STEP = 10_000;
const READINGS = 3000;

let az: TestAzurite;
let hub: LocalHub;
let agent: TestAgent;
let container: ContainerClient;
/** The registry's container: not created here, the trainer creates it at the first version. */
let models: ContainerClient;
/** The gateway's SAS: read, create, write on the uploads' container. */
let gatewaySas: string;
let registry: TwinRegistry;
const random = rng(21);

const until = <T>(fn: () => T | Promise<T>, timeout = 60_000) => vi.waitFor(fn, { timeout, interval: 100 });
const reported = () => hub.reported(DEVICE, MODULE) as { models?: Record<string, { version: string; status: string }> };

const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: () => new Date(), registry, models }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container(CONTAINER);
  await container.create();
  models = az.container(`${CONTAINER}-models`);
  gatewaySas = az.containerSasUrl(CONTAINER, 'rcw');
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  const moduleConnection = hub.addModule(DEVICE, MODULE);
  agent = await startHubAgent(hub, moduleConnection, DEVICE, {
    PUMPWATCH_SYNC: 'auto',
    PUMPWATCH_BLOB_SAS_URL: gatewaySas,
    PUMPWATCH_SYNC_INTERVAL_SECONDS: '1',
    PUMPWATCH_SYNC_BATCH_MAX_ROWS: '500',
    PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
});

afterAll(async () => {
  await agent?.stop();
  await hub?.stop();
  await az?.dispose();
});

describe('readings → agent → blobs → train → registry → twin → agent hot-swap', () => {
  it('closes the loop for one pump', async () => {
    // 1. The agent takes a day of readings (scored by its bundled default model) and syncs them.
    for (let start = 0; start < READINGS; start += 500) {
      const batch = Array.from({ length: 500 }, (_, k) => ({ pumpId: PUMP, ts: new Date(START + (start + k) * STEP).toISOString(), values: normalValues(random, start + k) }));
      const res = await postJson(`${agent.url}/readings`, batch);
      expect(res.status).toBe(202);
      expect(res.json.accepted).toBe(500);
    }
    await until(() => expect(agent.agent.buffer.stats().unsynced).toBe(0));
    await until(() => expect(reported().models?.default?.status).toBe('active'));

    // 2. The trainer reads them back from the blobs, trains, promotes and deploys to the gateway.
    const day = new Date(START).toISOString().slice(0, 10);
    const next = new Date(START + DAY).toISOString().slice(0, 10);
    // No --device: the gateway is found as the one whose uploads carry the pump's readings.
    const res = await cli(['train', '--source', PUMP, '--from', day, '--to', next, '--deploy']);
    expect(res.code, `${res.out}\n${res.err}`).toBe(0);
    const best = (await readBest(models, PUMP))!.pointer;
    const record = await readModelRecord(models, PUMP, best.version);
    expect(res.out).toContain(`${PUMP}: promoted ${best.version}`);
    expect(res.out).toMatch(new RegExp(`ok +${DEVICE}/${MODULE}: desired models\\.${PUMP} = ${best.version}`));
    expect(record.data).toMatchObject({ readings: READINGS, devices: [DEVICE] });
    expect(record.features).toEqual(['Current', 'Flow', 'Pressure']);

    // 3. The agent downloads it, checks it, swaps it in and reports it active.
    await until(() => expect(reported().models?.[PUMP]).toMatchObject({ version: best.version, status: 'active' }));
    // The technician's page is told the range the model was trained on, as the registry records it,
    // and that it is short of a day (8.3 h of readings, 80 % of them trained): `train` warned too.
    const { pumps } = (await (await fetch(`${agent.url}/pumps`)).json()) as { pumps: Array<{ pumpId: string; model: { version: string; training: unknown } | null }> };
    expect(pumps.find((p) => p.pumpId === PUMP)?.model).toMatchObject({
      version: best.version,
      training: { from: record.data.trainFrom, to: record.data.trainTo, spanMs: Date.parse(record.data.trainTo) - Date.parse(record.data.trainFrom), short: true },
    });
    expect(res.out).toMatch(/warning +the trained rows span 6\.\d h, less than a day/);

    // 4. The pump's next readings are scored by the new model; a broken one is flagged.
    const after = START + READINGS * STEP;
    const normal = Array.from({ length: 20 }, (_, k) => ({ pumpId: PUMP, ts: new Date(after + k * STEP).toISOString(), values: normalValues(random, READINGS + k) }));
    const broken = Array.from({ length: record.window }, (_, k) => ({ pumpId: PUMP, ts: new Date(after + (20 + k) * STEP).toISOString(), values: { ...normalValues(random, READINGS + 20 + k), Pressure: 9 } }));
    expect((await postJson(`${agent.url}/readings`, [...normal, ...broken])).status).toBe(202);
    const { predictions } = (await (await fetch(`${agent.url}/pumps/${PUMP}/predictions?since=${after}&limit=100`)).json()) as {
      predictions: Array<{ ts: string; modelVersion: string; anomaly: boolean }>;
    };
    const fresh = predictions.filter((p) => Date.parse(p.ts) >= after).sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    expect(fresh).toHaveLength(20 + record.window);
    expect(new Set(fresh.map((p) => p.modelVersion))).toEqual(new Set([best.version]));
    expect(fresh.at(-1)!.anomaly).toBe(true);
    expect(fresh.slice(0, 20).filter((p) => p.anomaly).length).toBeLessThanOrEqual(1);

    // 5. The gateway's SAS cannot rewrite the registry (before 2026-12-07 the registry sat beside
    //    the uploads: a SAS taken from one gateway could plant a model, with the model.json holding
    //    its sha256, that the next deploy pushed to the fleet).
    const token = gatewaySas.split('?')[1]!;
    const tampered = new ContainerClient(`${models.url}?${token}`).getBlockBlobClient(`models/${PUMP}/${best.version}/model.onnx`);
    await expect(tampered.upload('x', 1)).rejects.toMatchObject({ statusCode: 403 });
    expect(await readModelRecord(models, PUMP, best.version)).toEqual(record);
    const inUploads: string[] = [];
    for await (const b of container.listBlobsFlat({ prefix: 'models/' })) inUploads.push(b.name);
    expect(inUploads).toEqual([]);
  });
});
