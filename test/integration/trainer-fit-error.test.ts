/**
 * PW_TRAINER_FIT through the real `pumpwatch-trainer` process (dist/trainer/cli.js), against
 * Azurite for `train` and `train-all`: a `--window` longer than every run of the training rows is
 * an option the rows do not fit (trainer/README.md, "Exit codes"): `fit` and `train` exit 2
 * naming it, and `train-all` fails that source with PW_TRAINER_FIT, one a retry repeats (exit 4).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { EXIT } from '../../trainer/errors.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { seedDays } from '../support/trainer.js';

const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');
const T0 = Date.UTC(2026, 0, 1);
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-02'];
/** 1 000 readings: 800 trained on, 200 held out. */
const WINDOW_MESSAGE = 'window 1000 is longer than the 800 training rows: no training row has a whole window of readings';

let az: TestAzurite;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pw-trainer-fit-error-'));
  az = await startTestAzurite();
  const readings = az.container('fit-error');
  await readings.create();
  await seedDays(readings, 'pump-w', T0, 1, 30, { count: 1000 });
});

afterAll(async () => {
  await az?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function trainer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString, PUMPWATCH_BLOB_CONTAINER: 'fit-error', PUMPWATCH_MODELS_CONTAINER: 'fit-error-models' };
  return new Promise((resolve) => {
    execFile(process.execPath, [TRAINER, ...args], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

async function modelBlobs(): Promise<string[]> {
  const models = az.container('fit-error-models');
  if (!(await models.exists())) return [];
  const names: string[] = [];
  for await (const b of models.listBlobsFlat()) names.push(b.name);
  return names;
}

describe('pumpwatch-trainer and a --window the rows do not fit (PW_TRAINER_FIT)', () => {
  it('fit exits 2 naming the window and the training rows, and writes no model', async () => {
    const lines = ['timestamp,Current,Flow'];
    for (let i = 0; i < 50; i++) lines.push(`${new Date(T0 + i * 1000).toISOString()},${(1 + 0.1 * Math.sin(i / 3)).toFixed(4)},${(30 + Math.cos(i / 5)).toFixed(3)}`);
    writeFileSync(join(dir, 'pump.csv'), `${lines.join('\n')}\n`);
    const res = await trainer(['fit', '--csv', join(dir, 'pump.csv'), '--out', join(dir, 'm.onnx'), '--window', '1000']);
    expect(res.code).toBe(EXIT.usage);
    expect(res.stderr.trim()).toBe('pumpwatch-trainer fit: window 1000 is longer than the 50 training rows: no training row has a whole window of readings');
  });

  it('train exits 2 naming the window, the source and the range, and registers nothing', async () => {
    const res = await trainer(['train', '--source', 'pump-w', ...RANGE, '--window', '1000']);
    expect(res.code, res.stderr).toBe(EXIT.usage);
    expect(res.stderr.trim().split('\n').at(-1)).toBe(
      `pumpwatch-trainer train: cannot fit a model on the rows of "pump-w" between 2026-01-01T00:00:00.000Z and 2026-01-02T00:00:00.000Z: ${WINDOW_MESSAGE}`,
    );
    expect(await modelBlobs()).toEqual([]);
  });

  it('train-all fails the source with PW_TRAINER_FIT and exits 4: a retry of the shard fails the same way', async () => {
    const res = await trainer(['train-all', ...RANGE, '--window', '1000']);
    expect(res.code, res.stderr).toBe(EXIT.dataFailed);
    expect(res.stderr).toContain(`pump-w: FAILED PW_TRAINER_FIT: cannot fit a model on the rows of "pump-w" between 2026-01-01T00:00:00.000Z and 2026-01-02T00:00:00.000Z: ${WINDOW_MESSAGE}\n`);
    expect(res.stdout.trim().split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 0 skipped, 1 failed');
    expect((await modelBlobs()).filter((n) => n.startsWith('models/'))).toEqual([]);
  });
});
