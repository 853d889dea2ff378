/**
 * train-all and the registry reads against a real Azurite, through the CLI entry point: the
 * range of a run that crosses 00:00 UTC, a folder under readings/ that cannot be a pump, what
 * --deploy prints and counts when a source fails and a deploy is left pending, the exit code
 * that tells a failure a retry repeats (a source's own data) from one that may pass (Blob
 * Storage answering 503 through a proxy), and Blob Storage refusing the registry reads (a SAS
 * without read permission).
 */
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFromEnv, type CommandContext } from '../../trainer/cloud/context.js';
import { EXIT } from '../../trainer/errors.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy } from '../support/blob-proxy.js';
import { LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { hubRegistry, runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

let az: TestAzurite;

const context = (c: ContainerClient, now: () => Date = () => new Date(T0 + 30 * DAY)): CommandContext => trainerContext(c, { now });
const cli = (args: string[], ctx: CommandContext) => runTrainer(args, ctx);

async function newContainer(name: string): Promise<ContainerClient> {
  const c = az.container(name);
  await c.create();
  return c;
}

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

describe('train-all --days', () => {
  it('trains every source on the range resolved when the run started, even when the clock passes 00:00 UTC during the run, and prints it', async () => {
    const c = await newContainer('midnight-it');
    for (const pump of ['pump-a', 'pump-b']) {
      await seedDays(c, pump, T0 + DAY, 1, 30, { count: 4320 }); // Jan 2
      await seedDays(c, pump, T0 + 2 * DAY, 4321, 30, { count: 4320 }); // Jan 3
    }
    // The run starts two seconds before 00:00 UTC of Jan 4; every look at the clock takes a second.
    let tick = T0 + 3 * DAY - 2000;
    const clock = () => {
      const t = new Date(tick);
      tick += 1000;
      return t;
    };
    const res = await cli(['train-all', '--days', '1', '--concurrency', '1'], context(c, clock));
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^train-all: shard 0\/1: 2 of 2 sources, 1 at a time, readings 2026-01-02T00:00:00\.000Z → 2026-01-03T00:00:00\.000Z$/m);
    const records = [];
    for (const pump of ['pump-a', 'pump-b']) {
      expect(res.out).toMatch(new RegExp(`^${pump}: promoted `, 'm'));
      records.push(await readModelRecord(c, pump, (await readBest(c, pump))!.pointer.version));
    }
    // The second source was done after midnight, and was still trained on the range of the start.
    expect(records[1]!.createdAt >= '2026-01-04T00:00:00.000Z', records[1]!.createdAt).toBe(true);
    for (const record of records) expect(record.data, record.source).toMatchObject({ from: '2026-01-02T00:00:00.000Z', to: '2026-01-03T00:00:00.000Z' });
  });
});

describe('train-all and a folder under readings/ that is not a pump', () => {
  it('names it in a warning, skips it and trains the other sources (a name that is not percent-encoding does not stop every shard)', async () => {
    const c = await newContainer('stray-it');
    await seedDays(c, 'pump-ok', T0, 1, 30, { count: 4320 });
    await c.getBlockBlobClient('readings/tmp%/x').upload('notes', 5);
    // A well-encoded name that is no pump id (a "." is refused in the twin key models.<pump>) is no source either.
    await seedDays(c, 'pump.7', T0, 1, 30, { count: 4320 });
    for (const shard of ['0/1', '0/2', '1/2']) {
      const res = await cli(['train-all', '--shard', shard, '--from', '2026-01-01', '--to', '2026-01-02'], context(c));
      expect(res.code, `${shard}: ${res.err}`).toBe(0);
      expect(res.out).toContain('  warning  readings/tmp%/: not a source folder (its name is not a pump id as the agent writes it), skipped');
      expect(res.out).toContain('  warning  readings/pump.7/: not a source folder (its name is not a pump id as the agent writes it), skipped');
      expect(res.out).not.toMatch(/^pump\.7: /m);
      expect(res.err).not.toMatch(/URI malformed/);
    }
    expect((await readBest(c, 'pump-ok'))!.pointer.version).toMatch(/^20260101-/);
  });
});

describe('train-all --deploy', () => {
  let hub: LocalHub;
  beforeAll(async () => {
    hub = await LocalHub.start();
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it('prints one FAILED line for a source whose best.json is not JSON, and counts a promotion whose deploy is left pending as promoted', async () => {
    const c = await newContainer('deploy-count-it');
    await seedDays(c, 'pump-1', T0, 1, 30, { count: 4320 });
    await seedDays(c, 'pump-2', T0, 1, 30, { count: 4320 });
    const body = '{"schema":1, truncated';
    await c.getBlockBlobClient('models/pump-1/best.json').upload(body, body.length);
    // The hub answers, but no module serves the pumps: every deploy finds no module and stays pending.
    const registry = hubRegistry(hub);
    const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--deploy'], { ...context(c), registry: () => registry });
    expect(res.code).toBe(1);
    // The deploy step, run after the failed training too, failed on the same best.json: one line.
    expect(res.err.split('\n').filter((l) => l.startsWith('pump-1:'))).toEqual([
      expect.stringMatching(/^pump-1: FAILED PW_TRAINER_REGISTRY_INVALID: models\/pump-1\/best\.json is not JSON: nothing is compared, .* rollback --source pump-1 --version V --no-deploy .*V the version that should be live\)$/),
    ]);
    const promoted = (/^pump-2: promoted (\S+)/m.exec(res.out) ?? [])[1]!;
    expect(res.err).toContain(`pump-2: best.json now names ${promoted}, which was not deployed to every module; its deploy stays pending in best.json`);
    expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 1 promoted, 0 kept, 0 skipped, 1 failed, 1 deploy pending');
  });

  it('exits 1 before training when IoT Hub cannot be reached, naming its host and never its key, and trains with a hub that answers', async () => {
    // Before, every source was trained and promoted, then each deploy failed (getaddrinfo ENOTFOUND), and the Job retried the whole shard.
    const c = await newContainer('deploy-dead-hub-it');
    await seedDays(c, 'pump-1', T0, 1, 30, { count: 4320 });
    const key = Buffer.from('k'.repeat(32)).toString('base64');
    // The local hub's own connection string, its host one that does not resolve.
    const dead = hub.serviceConnectionString().replace(/HostName=[^;]+/, 'HostName=hub-pumpwatch.invalid').replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${key}`);
    const env = { PUMPWATCH_IOTHUB_CONNECTION_STRING: dead };
    const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--deploy'], { ...context(c), env, registry: () => registryFromEnv(env) });
    expect(res.code).toBe(EXIT.failure);
    expect(res.err.split('\n').at(-1)).toMatch(
      /^pumpwatch-trainer train-all: PW_TRAINER_DEPLOY: IoT Hub hub-pumpwatch\.invalid: a twin query, made before training, failed \(.*ENOTFOUND.*\): training was not started, as every deploy of this run would fail the same way$/,
    );
    expect(`${res.out}${res.err}`).not.toContain(key);
    expect(res.out).not.toMatch(/^pump-1: /m);
    expect(await readBest(c, 'pump-1')).toBeNull();
    // train on one source checks the same, before its training
    const one = await cli(['train', '--source', 'pump-1', '--from', '2026-01-01', '--to', '2026-01-02', '--deploy'], { ...context(c), env, registry: () => registryFromEnv(env) });
    expect(one.code).toBe(EXIT.failure);
    expect(one.err.split('\n').at(-1)).toMatch(/^pumpwatch-trainer train: PW_TRAINER_DEPLOY: IoT Hub hub-pumpwatch\.invalid: a twin query, made before training, failed \(.*ENOTFOUND.*\): training was not started/);
    expect(`${one.out}${one.err}`).not.toContain(key);
    expect(await readBest(c, 'pump-1')).toBeNull();

    // The same run with the hub reachable trains and promotes (no module serves the pump: its deploy stays pending).
    const live = { PUMPWATCH_IOTHUB_CONNECTION_STRING: hub.serviceConnectionString() };
    const registry = hubRegistry(hub);
    const ok = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--deploy'], { ...context(c), env: live, registry: () => registry });
    expect(ok.out).toMatch(/^pump-1: promoted /m);
    expect(ok.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 1 promoted, 0 kept, 0 skipped, 0 failed, 1 deploy pending');
  });
});

describe('train-all exit codes', () => {
  /** Two healthy pumps, a new one with 60 readings, and one whose second blob does not match its sha256 metadata. */
  async function seedFleet(c: ContainerClient): Promise<void> {
    await seedDays(c, 'pump-a', T0, 1, 30, { count: 4320 });
    await seedDays(c, 'pump-b', T0, 1, 31, { count: 4320 });
    await seedDays(c, 'pump-new', T0, 1, 30, { count: 60 });
    await seedDays(c, 'pump-bad', T0, 1, 30, { count: 4320 });
    const blobs = [];
    for await (const b of c.listBlobsFlat({ prefix: 'readings/pump-bad/', includeMetadata: true })) blobs.push(b);
    await c.getBlockBlobClient(blobs[1]!.name).setMetadata({ ...blobs[1]!.metadata, sha256: '0'.repeat(64) });
  }

  it('exits 4 when every failure is a source\'s own data, which a retry repeats, and trains and promotes the other sources', async () => {
    const c = await newContainer('data-exit-it');
    await seedFleet(c);
    const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02'], context(c));
    expect(res.code, res.err).toBe(EXIT.dataFailed);
    expect(res.err).toMatch(/^pump-new: FAILED PW_TRAINER_NO_DATA: not enough usable rows of "pump-new" between 2026-01-01T00:00:00\.000Z and 2026-01-02T00:00:00\.000Z: 48 to train \(need 100\)/m);
    expect(res.err).toMatch(/^pump-bad: FAILED PW_SYNC_BLOB_CORRUPT: blob readings\/pump-bad\/\S+: content does not match its sha256 metadata$/m);
    expect(res.err).toContain(`train-all: shard 0/1: every failure is one of its source's data or registry, which a retry fails on again: exit ${EXIT.dataFailed}`);
    expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 2 promoted, 0 kept, 0 skipped, 2 failed');
    for (const pump of ['pump-a', 'pump-b']) expect((await readBest(c, pump))?.pointer.version, pump).toMatch(/^20260101-/);
    // The same night again (a retry): the same failures, and the promoted ones are kept.
    const again = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02'], context(c));
    expect(again.code, again.err).toBe(EXIT.dataFailed);
    expect(again.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 2 kept, 0 skipped, 2 failed');
  });

  it('exits 1 when a failure may pass on a retry (Blob Storage answering 503 for one source\'s readings), beside failures of data', async () => {
    const c = await newContainer('busy-exit-it');
    await seedFleet(c);
    await seedDays(c, 'pump-busy', T0, 1, 30, { count: 4320 });
    const proxy = await startBlobProxy(az.port, (req) => (req.method === 'GET' && req.path.includes('/busy-exit-it/readings/pump-busy/') ? 503 : 'forward'));
    try {
      // The trainer's client as the CLI makes it, but without the SDK's own retries of a 503 (seconds apart).
      const busy = BlobServiceClient.fromConnectionString(proxy.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('busy-exit-it');
      const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02'], context(busy));
      expect(res.code, res.err).toBe(EXIT.failure);
      expect(res.err).toMatch(/^pump-busy: FAILED PW_TRAINER_STORAGE: reading the readings of "pump-busy" failed: Blob Storage answered 503 ServerBusy/m);
      expect(res.err).toMatch(/^pump-new: FAILED PW_TRAINER_NO_DATA: /m);
      expect(res.err).not.toContain('exit 4');
      expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 2 promoted, 0 kept, 0 skipped, 3 failed');
    } finally {
      await proxy.close();
    }
  });

  it('stops starting sources once Blob Storage failed 5 in a row, names the rest not tried, and exits 1 for a retry', async () => {
    // Before, an outage failed every source of the shard one after the other, each after its own waits.
    const c = await newContainer('outage-it');
    const pumps = Array.from({ length: 9 }, (_, i) => `pump-o${i}`);
    for (const [i, pump] of pumps.entries()) await seedDays(c, pump, T0, 1 + i, 30, { count: 400 });
    // the sources are listed; then every read of a source's readings gets 503 (no retry of the SDK's)
    const proxy = await startBlobProxy(az.port, (req) => (req.method === 'GET' && /\/outage-it\/readings\/./.test(req.path) ? 503 : req.query.get('prefix')?.startsWith('readings/pump-') ? 503 : 'forward'));
    try {
      const down = BlobServiceClient.fromConnectionString(proxy.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('outage-it');
      const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--concurrency', '1'], context(down));
      expect(res.code, res.err).toBe(EXIT.failure);
      expect(res.err.match(/^pump-o\d: FAILED PW_TRAINER_STORAGE: /gm)).toHaveLength(5);
      expect(res.err).toContain('train-all: shard 0/1: Blob Storage failed 5 sources in a row: the sources not started yet are not tried (exit 1: a retry of the shard tries them)');
      expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 0 skipped, 5 failed, 4 not tried');
    } finally {
      await proxy.close();
    }
  });

  it('exits 4 when an option does not fit a source\'s readings (PW_TRAINER_USAGE met by a source), which every retry repeats', async () => {
    // Before, it exited 1, and the Job trained the whole shard twice more for the same refusal.
    const c = await newContainer('usage-exit-it');
    await seedDays(c, 'pump-a', T0, 1, 30, { count: 4320 });
    const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--exclude', 'Current', '--stopped-when', 'Current<0.5'], context(c));
    expect(res.code, res.err).toBe(EXIT.dataFailed);
    expect(res.err).toMatch(/^pump-a: FAILED PW_TRAINER_USAGE: .*"Current"/m);
    expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 0 skipped, 1 failed');
  });

  it('tells a Blob Storage refusal met while saying where a source\'s newest readings are as PW_TRAINER_STORAGE, by status and code only', async () => {
    // Before, the SDK's error came out raw: its service code for a code, and the body of the answer (which a proxy may fill with the request) for a message.
    const c = await newContainer('note-exit-it');
    await seedDays(c, 'pump-new', T0, 1, 30, { count: 60 });
    const proxy = await startBlobProxy(az.port, (req) => (req.method === 'GET' && req.query.get('prefix') === 'readings/pump-new/' && req.query.get('delimiter') === '/' ? 403 : 'forward'));
    try {
      const refusing = BlobServiceClient.fromConnectionString(proxy.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('note-exit-it');
      const res = await cli(['train-all', '--from', '2026-01-01', '--to', '2026-01-02'], context(refusing));
      expect(res.err).toMatch(/^pump-new: FAILED PW_TRAINER_STORAGE: listing the readings of "pump-new" failed: Blob Storage answered 403 ServerBusy$/m);
      expect(res.err).not.toContain('The proxy of this test');
      expect(res.code, res.err).toBe(EXIT.failure);
    } finally {
      await proxy.close();
    }
  });
});

describe('Blob Storage refusing a registry read', () => {
  it('is PW_TRAINER_STORAGE with the status and service code, not PW_TRAINER_REGISTRY_INVALID with the raw service message', async () => {
    const c = await newContainer('nosread-it');
    await seedDays(c, 'pump-1', T0, 1, 30, { count: 4320 });
    await promoteFittedModel(c, 'pump-1', 'v1', 1, new Date());
    // List and write, no read: the reading of best.json (train, drift, train-all) and of model.json (evaluate) is refused.
    const noRead = context(new ContainerClient(az.containerSasUrl('nosread-it', 'lw')));
    const range = ['--from', '2026-01-01', '--to', '2026-01-02'];
    for (const [args, message] of [
      [['train', '--source', 'pump-1', ...range], /^pumpwatch-trainer train: PW_TRAINER_STORAGE: reading models\/pump-1\/best\.json failed: Blob Storage answered 403 AuthorizationPermissionMismatch$/],
      [['drift', '--source', 'pump-1', ...range], /^pumpwatch-trainer drift: PW_TRAINER_STORAGE: reading models\/pump-1\/best\.json failed: Blob Storage answered 403 AuthorizationPermissionMismatch$/],
      // (downloadToBuffer asks for the properties first: the answer to a HEAD request has no body, so no service code.)
      [['evaluate', '--source', 'pump-1', '--version', 'v1', ...range], /^pumpwatch-trainer evaluate: PW_TRAINER_STORAGE: reading models\/pump-1\/v1\/model\.json failed: Blob Storage answered 403( AuthorizationPermissionMismatch)?$/],
      [['train-all', ...range], /^pump-1: FAILED PW_TRAINER_STORAGE: reading models\/pump-1\/best\.json failed: Blob Storage answered 403 AuthorizationPermissionMismatch$/m],
    ] as const) {
      const res = await cli([...args], noRead);
      expect(res.code, args[0]).toBe(1);
      expect(res.err, args[0]).toMatch(message);
      expect(res.err, args[0]).not.toMatch(/RequestId|REGISTRY_INVALID|sig=/);
    }
  });
});
