/**
 * train-all (a real process, dist/trainer/cli.js) stopped by SIGTERM or SIGINT mid-shard (a pod
 * evicted, the Job's activeDeadlineSeconds): one line says which sources were done, by outcome,
 * which were interrupted and how many were not started, then the exit code of the signal. Before,
 * it exited 143 with no word of what was left. Blob Storage is Azurite behind a proxy that holds
 * the reads of the second pump's readings, so the run is surely inside that pump when signalled.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy, type BlobProxy } from '../support/blob-proxy.js';
import { seedDays } from '../support/trainer.js';

const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');
const T0 = Date.UTC(2026, 0, 1);

let az: TestAzurite;
let container: ContainerClient;
let proxy: BlobProxy;

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('pumpwatch');
  await container.create();
  for (const [i, pump] of ['pump-a', 'pump-b', 'pump-c'].entries()) await seedDays(container, pump, T0, 1, 30 + i, { count: 2000 });
  // Every read of pump-b's readings (the listing of its day and its blobs) is held, never answered.
  proxy = await startBlobProxy(az.port, (req) => (req.query.get('prefix')?.startsWith('readings/pump-b/') || req.path.includes('/readings/pump-b/') ? 'hold' : 'forward'));
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await az?.dispose();
});

describe('train-all stopped by a signal', () => {
  it.each([
    ['SIGTERM', 143, ''],
    ['SIGINT', 130, ''],
    ['SIGTERM', 143, '--json'],
  ] as const)('%s: one line of the sources done, interrupted and not started, then exit %i %s', async (signal, code, json) => {
    const child = spawn(process.execPath, [TRAINER, 'train-all', '--from', '2026-01-01', '--to', '2026-01-02', '--concurrency', '1', ...(json ? [json] : [])], {
      // A registry of its own for each case: pump-a is promoted in each.
      env: { PATH: process.env.PATH ?? '', PUMPWATCH_BLOB_CONNECTION_STRING: proxy.connectionString, PUMPWATCH_MODELS_CONTAINER: `models-${signal.toLowerCase()}${json ? '-json' : ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const heldBefore = proxy.held();
    // pump-a trained (its line printed), and a read of pump-b's readings is out and unanswered.
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let early = false;
    void exited.then(() => (early = true));
    while (!((json ? /"source":"pump-a"/ : /^pump-a: /m).test(stdout) && proxy.held() > heldBefore)) {
      if (early) throw new Error(`exited before the signal:\n${stdout}\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill(signal);
    const [exitCode, bySignal] = await exited;
    expect({ exitCode, bySignal }).toEqual({ exitCode: code, bySignal: null });
    if (json) {
      // stdout alone says the lines stopped short: its last line is the stop, not a summary
      const out = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(out[0]).toMatchObject({ source: 'pump-a', outcome: 'promoted' });
      expect(out.at(-1)).toEqual({ stopped: { signal, shard: '0/1', done: { promoted: 1 }, interrupted: ['pump-b'], notStarted: 1 } });
    } else expect(stdout).toMatch(/^pump-a: promoted /m);
    const lines = stderr.trim().split('\n');
    expect(lines.slice(-2)).toEqual([
      `train-all: shard 0/1: stopped by ${signal}: 1 done (1 promoted, 0 kept, 0 skipped, 0 failed), 1 interrupted (pump-b), 1 not started`,
      expect.stringMatching(new RegExp(`^pumpwatch-trainer: stopped by ${signal}; nothing more is written`)),
    ]);
  });
});
