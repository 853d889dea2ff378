/**
 * A fleet upgraded from a trainer older than 2026-12-07, whose registry is still `models/` in the
 * uploads' container (trainer/README.md, "Environment"). The new trainer, finding no best.json in
 * its own container, took the source for a new one and promoted without comparison; it now stops
 * with PW_TRAINER_REGISTRY_MOVED until the registry is moved, and compares with it afterwards.
 * Through the real bin (dist/trainer/cli.js) against Azurite.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { defaultContext } from '../../trainer/cloud/context.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { challengerVersion, runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');
let az: TestAzurite;
let uploads: ContainerClient;
let env: Record<string, string>;
/** The version the old trainer promoted, in the uploads' container. */
let oldVersion: string;

beforeAll(async () => {
  az = await startTestAzurite();
  uploads = az.container('pumpwatch');
  await uploads.create();
  await seedDays(uploads, 'pump-1', Date.UTC(2026, 0, 1), 1, 10, { count: 4_000 });
  await seedDays(uploads, 'pump-1', Date.UTC(2026, 0, 3), 4_001, 10, { count: 4_000 });
  // The old trainer: its registry is models/ of the uploads' container itself.
  const old = await runTrainer(['train', '--source', 'pump-1', '--from', '2026-01-01', '--to', '2026-01-03'], trainerContext(uploads, { now: new Date(Date.UTC(2026, 0, 3, 1)) }));
  expect(old.code, old.err).toBe(0);
  oldVersion = /^pump-1: promoted (\S+)/m.exec(old.out)?.[1] ?? '';
  expect(oldVersion).not.toBe('');
  env = { PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString };
});

afterAll(async () => {
  await az?.dispose();
});

function trainer(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TRAINER, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 }, (err, out, errText) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, out, err: errText });
    });
  });
}

async function names(container: ContainerClient): Promise<string[]> {
  const found: string[] = [];
  if (!(await container.exists())) return found;
  for await (const b of container.listBlobsFlat()) found.push(b.name);
  return found;
}

describe('a registry still at its place before 2026-12-07 (models/ in the uploads container)', () => {
  it('stops train with PW_TRAINER_REGISTRY_MOVED, naming both places and the move, and writes nothing', async () => {
    const run = await trainer(['train', '--source', 'pump-1', '--from', '2026-01-03', '--to', '2026-01-05']);
    expect(run.code).toBe(1);
    const models = `http://127.0.0.1:${az.port}/devstoreaccount1/pumpwatch-models`;
    expect(run.err.trim().split('\n').at(-1)).toBe(
      `pumpwatch-trainer train: PW_TRAINER_REGISTRY_MOVED: the registry (container "pumpwatch-models") holds no models/pump-1/best.json, but the uploads' container "pumpwatch" does: ` +
        'the registry was there before 2026-12-07 and has not been moved. Nothing is compared, promoted, deployed or rolled back until it is: move it with ' +
        `azcopy copy 'http://127.0.0.1:${az.port}/devstoreaccount1/pumpwatch/models?SAS' '${models}?SAS' --recursive (the blob names stay models/…), ` +
        `then run pumpwatch-trainer refresh-urls, and only then delete models/ from "pumpwatch" (trainer/README.md, "Environment")`,
    );
    expect(run.out).not.toContain('promoted');
    expect(`${run.out}${run.err}`).not.toContain('AccountKey');
    expect(await names(az.container('pumpwatch-models'))).toEqual([]);
  });

  it('stops drift and deploy the same way (the one reader of best.json)', async () => {
    const drift = await runTrainer(['drift', '--source', 'pump-1', '--from', '2026-01-03', '--to', '2026-01-05'], defaultContext(env));
    expect(drift.code).toBe(1);
    expect(drift.err).toMatch(/^pumpwatch-trainer drift: PW_TRAINER_REGISTRY_MOVED: /m);
    const deploy = await runTrainer(['deploy', '--source', 'pump-1', '--device', 'gw-1'], defaultContext({ ...env, PUMPWATCH_IOTHUB_CONNECTION_STRING: 'HostName=127.0.0.1;SharedAccessKeyName=service;SharedAccessKey=a2V5' }));
    expect(deploy.err).toMatch(/^pumpwatch-trainer deploy: PW_TRAINER_REGISTRY_MOVED: /m);
  });

  it('compares with the moved registry once it is moved (the blob names stay models/…)', async () => {
    const models = az.container('pumpwatch-models');
    await models.createIfNotExists();
    // what the documented azcopy does: every blob under models/, same names, into the registry's container
    for await (const b of uploads.listBlobsFlat({ prefix: 'models/' })) {
      const body = await uploads.getBlockBlobClient(b.name).downloadToBuffer();
      await models.getBlockBlobClient(b.name).upload(body, body.length);
    }
    const run = await trainer(['train', '--source', 'pump-1', '--from', '2026-01-03', '--to', '2026-01-05']);
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(new RegExp(`^ {2}compare .*; live ${oldVersion}: `, 'm'));
    expect(run.out).not.toContain('no live model');
    // model.json names the build that trained it (lib/build-info.ts), as dist/build-info.json says
    const version = challengerVersion(run.out, 'pump-1');
    const record = JSON.parse((await models.getBlockBlobClient(`models/pump-1/${version}/model.json`).downloadToBuffer()).toString('utf8')) as { trainer: { version: string } };
    const info = JSON.parse(readFileSync(join(packageRoot(), 'dist', 'build-info.json'), 'utf8')) as { version: string; build: string };
    expect(record.trainer.version).toBe(`${info.version}+${info.build}`);
  });
});
