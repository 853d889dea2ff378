/**
 * deploy and rollback against the real services: the model registry in Azurite, the module
 * twins in the local hub through the real azure-iothub Registry (HTTPS REST, ETags, queries).
 * The SAS URL put in the twin really downloads the model, and only read access is granted.
 */
import { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFromEnv, type CommandContext, type TwinRegistry } from '../../trainer/cloud/context.js';
import { runCli } from '../../trainer/commands/index.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { hubRegistry, runTrainer, trainerContext } from '../support/trainer.js';

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

/** Registers a model made by the trainer as `version` of `source` and promotes it. */
const promote = (source: string, version: string, seed: number): Promise<ModelRecord> => promoteFittedModel(container, source, version, seed, NOW);

const context = (): CommandContext => trainerContext(container, { now: NOW, registry });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

const desiredModels = (device: string) => (hub.desired(device, 'pumpwatch') as { models?: Record<string, any> }).models ?? {};

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('deploy-it');
  await container.create();
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  for (const device of ['gw-1', 'gw-2', 'gw-3']) addAgentModule(hub, device, 'pumpwatch');
  hub.updateReported('gw-1', 'pumpwatch', { models: { 'pump-7': { version: 'old', status: 'active' } } });
  hub.updateReported('gw-2', 'pumpwatch', { pumps: ['pump-7', 'pump-8'] });
  hub.updateDesired('gw-1', 'pumpwatch', { sync: { intervalSeconds: 60 } });
});

afterAll(async () => {
  await hub?.stop();
  await az?.dispose();
});

describe('pumpwatch-trainer deploy and rollback', () => {
  it('sets models.<source> on every module that reports the pump, with a read-only SAS URL that downloads the model', async () => {
    const record = await promote('pump-7', 'v1', 1);
    const res = await cli(['deploy', '--source', 'pump-7']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/deploy models\/pump-7\/v1\/model\.onnx → 2 module\(s\)/);
    expect(res.out).not.toMatch(/sig=/);
    expect(desiredModels('gw-3')).toEqual({});
    for (const device of ['gw-1', 'gw-2']) {
      const entry = desiredModels(device)['pump-7'];
      expect(entry).toMatchObject({ version: 'v1', sha256: record.model.sha256, size: record.model.size });
      expect(entry.shadow).toBeUndefined();
      const url = new URL(entry.url);
      expect(url.searchParams.get('sp')).toBe('r');
      expect(new Date(url.searchParams.get('se')!).getTime()).toBe(NOW.getTime() + 7 * 24 * 3_600_000);
      const body = Buffer.from(await (await fetch(entry.url)).arrayBuffer());
      expect(createHash('sha256').update(body).digest('hex')).toBe(record.model.sha256);
      const write = await fetch(entry.url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'x' });
      expect(write.status).toBe(403);
    }
    // Other desired settings are untouched by the conditional patch.
    expect(hub.desired('gw-1', 'pumpwatch')).toMatchObject({ sync: { intervalSeconds: 60 } });
  });

  it('deploys to one named module as a shadow model, and to the modules of a query', async () => {
    await promote('pump-7', 'v2', 2);
    const shadow = await cli(['deploy', '--source', 'pump-7', '--device', 'gw-3', '--shadow', '--expires-hours', '2']);
    expect(shadow.code, shadow.err).toBe(0);
    expect(desiredModels('gw-3')['pump-7']).toMatchObject({ version: 'v2', shadow: true });
    expect(desiredModels('gw-1')['pump-7'].version).toBe('v1');
    const byQuery = await cli(['deploy', '--source', 'pump-7', '--version', 'v1', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-3'"]);
    expect(byQuery.code, byQuery.err).toBe(0);
    expect(desiredModels('gw-3')['pump-7']).toMatchObject({ version: 'v1' });
    expect(desiredModels('gw-3')['pump-7'].shadow).toBeUndefined();
  });

  it('rolls back to the previous best and re-deploys it', async () => {
    await cli(['deploy', '--source', 'pump-7']);
    expect(desiredModels('gw-1')['pump-7'].version).toBe('v2');
    const res = await cli(['rollback', '--source', 'pump-7']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/pump-7: best\.json v2 → v1 \(rollback\)/);
    // best.json moved with the deploy marked pending; every module updated, the mark is gone.
    expect(res.out).toMatch(/\npump-7: best\.json v1: deployed, no longer pending$/);
    expect((await readBest(container, 'pump-7'))!.pointer).toMatchObject({ version: 'v1' });
    expect((await readBest(container, 'pump-7'))!.pointer).not.toHaveProperty('deployPending');
    expect(desiredModels('gw-1')['pump-7'].version).toBe('v1');
    expect(desiredModels('gw-2')['pump-7'].version).toBe('v1');
  });

  it('moves nothing when the rollback could not be deployed: no IoT Hub, an unusable one, a bad --expires-hours, no key to sign URLs', async () => {
    await promote('pump-r', 'v1', 4);
    await promote('pump-r', 'v2', 5);
    const before = (await readBest(container, 'pump-r'))!.pointer;
    expect(before).toMatchObject({ version: 'v2', history: [{ version: 'v1' }] });
    const hubFrom = (env: Record<string, string>): CommandContext => ({ ...context(), registry: () => registryFromEnv(env) });
    const sasOnly: CommandContext = { ...context(), container: () => new ContainerClient(az.containerSasUrl('deploy-it')), models: () => new ContainerClient(az.containerSasUrl('deploy-it')) };
    for (const [args, ctx, code, msg] of [
      [[], hubFrom({}), 1, /^pumpwatch-trainer rollback: PW_TRAINER_NOT_CONFIGURED: IoT Hub is not configured: set PUMPWATCH_IOTHUB_CONNECTION_STRING/],
      [[], hubFrom({ PUMPWATCH_IOTHUB_CONNECTION_STRING: 'HostName=hub.example.net' }), 1, /^pumpwatch-trainer rollback: PW_TRAINER_NOT_CONFIGURED: PUMPWATCH_IOTHUB_CONNECTION_STRING is not usable: .*missing the property/],
      [['--expires-hours', 'abc'], context(), 2, /^pumpwatch-trainer rollback: --expires-hours must be a number from 1 to 8760, got "abc"$/],
      [['--device', 'gw-1', '--query', 'SELECT * FROM devices.modules'], context(), 2, /^pumpwatch-trainer rollback: give --device or --query, not both$/],
      [[], sasOnly, 1, /^pumpwatch-trainer rollback: PW_TRAINER_NOT_CONFIGURED: deploy signs model URLs with the storage account key/],
    ] as const) {
      const res = await cli(['rollback', '--source', 'pump-r', ...args], ctx);
      expect(res.code, args.join(' ')).toBe(code);
      expect(res.err).toMatch(msg);
      expect(res.out).toBe('');
      expect((await readBest(container, 'pump-r'))!.pointer, args.join(' ')).toEqual(before);
    }
    // --no-deploy needs no IoT Hub.
    const only = await cli(['rollback', '--source', 'pump-r', '--no-deploy'], hubFrom({}));
    expect(only.code, only.err).toBe(0);
    expect(only.out).toBe('pump-r: best.json v2 → v1 (rollback)');
    expect((await readBest(container, 'pump-r'))!.pointer).toMatchObject({ version: 'v1', history: [] });
  });

  it('fails clearly when nothing can be deployed', async () => {
    const none = await cli(['deploy', '--source', 'pump-404']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/PW_TRAINER_NO_MODEL: no model was promoted for "pump-404"/);
    await promote('pump-9', 'v1', 3);
    const nobody = await cli(['deploy', '--source', 'pump-9']);
    expect(nobody.code).toBe(1);
    expect(nobody.err).toBe('pumpwatch-trainer deploy: PW_TRAINER_DEPLOY: no module matched; v1 was not deployed');
    const missing = await cli(['deploy', '--source', 'pump-9', '--device', 'gw-404']);
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(/FAILED gw-404\/pumpwatch: .*gw-404\/pumpwatch failed/);
    const bad = await cli(['deploy', '--source', 'pump-9', '--device', 'gw-1', '--query', 'SELECT * FROM devices.modules']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('pumpwatch-trainer deploy: give --device or --query, not both');
  });

  it('refuses to sign URLs without an account key', async () => {
    const sasOnly = { ...context(), container: () => new ContainerClient(az.containerSasUrl('deploy-it')), models: () => new ContainerClient(az.containerSasUrl('deploy-it')) };
    const out: string[] = [];
    const err: string[] = [];
    expect(await runCli(['deploy', '--source', 'pump-7'], { out: (t) => out.push(t), err: (t) => err.push(t) }, sasOnly)).toBe(1);
    expect(err.join('\n')).toMatch(/PW_TRAINER_NOT_CONFIGURED: deploy signs model URLs with the storage account key/);
    expect(err.join('\n')).not.toMatch(/sig=/);
  });
});
