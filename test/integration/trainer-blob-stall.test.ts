/**
 * The trainer on a link where the connection to Blob Storage stays up while answers stop (a
 * proxy in front of a real Azurite holds the requests it is told to, and never answers them):
 * each request is given up after the idle limit (a short one here; 60 s in the field), the
 * source fails with PW_TRAINER_STORAGE saying so, and the run goes on with the other sources
 * and prints its summary (it hung for good: a pod that never finished nor reported).
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy, type ProxiedRequest, type ProxyAction } from '../support/blob-proxy.js';
import { runTrainer, seedDays, trainerContext, type TrainerRun } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-02'];
/**
 * The idle limit the tests give the trainer's requests (60 s in the field): long enough for a
 * healthy request on a busy test machine (0.4 s cut the other pump's downloads while the first
 * decoded its blobs), short enough not to wait.
 */
const IDLE_MS = 2000;
/** How long a test waits for a run before calling it hung (before the time limits: forever). */
const HUNG_MS = 20_000;

let az: TestAzurite;

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

const isListing = (req: ProxiedRequest) => req.query.get('comp') === 'list';

/**
 * Runs `pumpwatch-trainer <args>` on container `name` through a proxy that holds the requests
 * `hold` picks, with the short idle limit; 'hung' when it has not ended in HUNG_MS.
 */
async function runHolding(name: string, args: string[], hold: (req: ProxiedRequest) => boolean): Promise<{ run: TrainerRun | 'hung'; held: number }> {
  const proxy = await startBlobProxy(az.port, (req): ProxyAction => (hold(req) ? 'hold' : 'forward'));
  try {
    // The trainer's client as the CLI makes it (the SDK's default retries), through the proxy.
    const container = BlobServiceClient.fromConnectionString(proxy.connectionString).getContainerClient(name);
    const ctx = trainerContext(container, { now: new Date(T0 + 30 * DAY), idleMs: IDLE_MS });
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HUNG_MS)));
    const run = await Promise.race([runTrainer(args, ctx), hung]);
    clearTimeout(timer);
    return { run, held: proxy.held() };
  } finally {
    await proxy.close();
  }
}

async function seeded(name: string, pumps: string[]): Promise<ContainerClient> {
  const c = az.container(name);
  await c.create();
  for (const pump of pumps) await seedDays(c, pump, T0, 1, 30, { count: 4320 });
  return c;
}

const finished = (r: TrainerRun | 'hung'): TrainerRun => {
  expect(r, 'the run never ended').not.toBe('hung');
  return r as TrainerRun;
};

describe('a connection to Blob Storage that stops answering', () => {
  it('fails the source whose readings blobs are never answered, trains the others and prints the summary (train-all)', async () => {
    const c = await seeded('stall-readings-it', ['pump-ok', 'slow-pump']);
    const { run, held } = await runHolding('stall-readings-it', ['train-all', ...RANGE, '--concurrency', '2'], (req) => req.method === 'GET' && !isListing(req) && req.path.includes('/readings/slow-pump/'));
    const res = finished(run);
    expect(held).toBeGreaterThan(0);
    expect(res.code, res.err).toBe(EXIT.failure); // a retry may pass: not a failure of the data
    expect(res.err).toMatch(
      /^slow-pump: FAILED PW_TRAINER_STORAGE: reading the readings of "slow-pump" failed: no answer from Blob Storage for 2 s \(downloading readings\/slow-pump\/2026\/01\/01\/gw-1\/\S+\.jsonl\.gz\): the connection stalled, the request was given up$/m,
    );
    expect(res.out.split('\n').at(-1), res.err).toBe('train-all: shard 0/1: 1 promoted, 0 kept, 0 skipped, 1 failed');
    expect((await readBest(c, 'pump-ok'))?.pointer.version).toMatch(/^20260101-/);
    expect(await readBest(c, 'slow-pump')).toBeNull();
  });

  it('fails the run whose listing of a day of readings is never answered', async () => {
    await seeded('stall-list-it', ['pump-l']);
    const { run } = await runHolding('stall-list-it', ['train', '--source', 'pump-l', ...RANGE], (req) => isListing(req) && (req.query.get('prefix') ?? '').startsWith('readings/pump-l/2026/01/01/'));
    const res = finished(run);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err).toMatch(/PW_TRAINER_STORAGE: reading the readings of "pump-l" failed: no answer from Blob Storage for 2 s \(listing readings\/pump-l\/2026\/01\/01\/\): the connection stalled/);
  });

  it('fails the run whose listing of the labels is never answered', async () => {
    await seeded('stall-labels-it', ['pump-lb']);
    const { run } = await runHolding('stall-labels-it', ['train', '--source', 'pump-lb', ...RANGE], (req) => isListing(req) && req.query.get('prefix') === 'labels/');
    const res = finished(run);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err.split('\n').at(-1)).toBe('pumpwatch-trainer train: PW_TRAINER_STORAGE: reading the labels failed: no answer from Blob Storage for 2 s (listing labels/): the connection stalled, the request was given up');
  });

  it('fails train-all at once when the listing of the sources is never answered', async () => {
    await seeded('stall-sources-it', ['pump-s']);
    const { run } = await runHolding('stall-sources-it', ['train-all', ...RANGE], (req) => isListing(req) && req.query.get('prefix') === 'readings/');
    const res = finished(run);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err).toBe('pumpwatch-trainer train-all: PW_TRAINER_STORAGE: listing the sources in readings/ failed: no answer from Blob Storage for 2 s (listing readings/): the connection stalled, the request was given up');
  });

  it('fails the source whose registry read or write of best.json is never answered, naming the blob', async () => {
    const c = await seeded('stall-registry-it', ['pump-r']);
    const read = finished((await runHolding('stall-registry-it', ['train', '--source', 'pump-r', ...RANGE], (req) => req.method === 'GET' && req.path.endsWith('/models/pump-r/best.json'))).run);
    expect(read.code).toBe(EXIT.failure);
    expect(read.err.split('\n').at(-1)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_STORAGE: reading models/pump-r/best.json failed: no answer from Blob Storage for 2 s (reading models/pump-r/best.json): the connection stalled, the request was given up',
    );
    // Its whole body sent, a write waits for the answer the idle limit plus the time the body takes at the floor rate (sync/deadline.ts).
    const write = finished((await runHolding('stall-registry-it', ['train', '--source', 'pump-r', ...RANGE], (req) => req.method === 'PUT' && req.path.endsWith('/models/pump-r/best.json'))).run);
    expect(write.code).toBe(EXIT.failure);
    expect(write.err.split('\n').at(-1)).toMatch(
      /^pumpwatch-trainer train: PW_TRAINER_STORAGE: writing models\/pump-r\/best\.json failed: no answer from Blob Storage for \d+\.\d s \(writing models\/pump-r\/best\.json\): the connection stalled, the request was given up$/,
    );
    expect(await readBest(c, 'pump-r')).toBeNull();
  });
});
