/**
 * `drift` and `train` on few rows, against a real Azurite, through the CLI entry point:
 * - 20 fresh readings of the training distribution are not drift (the thresholds are raised for
 *   few rows), while 20 readings of a moved sensor still are;
 * - on a terminal the progress bar is cleared before an error or a skip message.
 */
import { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readingsBlobName } from '../../sync/layout.js';
import { runCli } from '../../trainer/commands/index.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';
import { readBestRecord } from '../../trainer/registry/best-record.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const MINUTE = 60_000;
const JAN = (day: number) => Date.UTC(2026, 0, day);
const CLEAR = '\r\x1b[2K';

let az: TestAzurite;
let container: ContainerClient;

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** The training generator: three independent sensors. */
function reading(rand: () => number, flowShift = 0): Record<string, number> {
  return { Flow: 50 + flowShift + gaussian(rand), Pressure: 3 + 0.1 * gaussian(rand), Current: 10 + 0.5 * gaussian(rand) };
}

/** Uploads one batch of readings, one a minute from `from`, as the agent's sync does. */
async function seed(pumpId: string, from: number, count: number, seq0: number, fn: () => Record<string, number>): Promise<void> {
  await seedReadings(container, pumpId, 'gw-1', from, count, fn, { seq0, step: MINUTE, batch: count });
}

const context = (isTTY = false) => trainerContext(container, { now: new Date(JAN(20)), isTTY });
const cli = (args: string[]) => runTrainer(args, context());

/** Runs the CLI as on a terminal: every write (raw bar, stderr line, stdout line) in the order made. */
async function onTerminal(args: string[]) {
  const log: { kind: 'raw' | 'err' | 'out'; text: string }[] = [];
  const code = await runCli(
    args,
    { out: (text) => log.push({ kind: 'out', text }), err: (text) => log.push({ kind: 'err', text }), raw: (text) => log.push({ kind: 'raw', text }) },
    context(true),
  );
  return { code, log };
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-drift-few');
  await container.create();
  const rand = mulberry32(100);
  await seed('pump-1', JAN(5), 600, 1, () => reading(rand));
  // Day 7: 20 more readings of the same generator; day 8: 20 with Flow moved by 5 σ.
  await seed('pump-1', JAN(7), 20, 1001, () => reading(rand));
  await seed('pump-1', JAN(8), 20, 2001, () => reading(rand, 5));
  // Day 9: a blob that is not gzip, so that reading the range fails.
  const bad = Buffer.from('not gzip');
  await container.getBlockBlobClient(readingsBlobName('pump-1', 'gw-1', 3001, 3010, JAN(9))).upload(bad, bad.length);
  await seed('pump-few', JAN(5), 50, 1, () => reading(rand));
  const trained = await cli(['train', '--source', 'pump-1', '--from', '2026-01-05', '--to', '2026-01-06']);
  expect(trained.code, trained.err).toBe(0);
});

afterAll(async () => {
  await az?.dispose();
});

describe('drift on few rows', () => {
  it('finds no drift in 20 fresh readings of the training distribution, and says PSI is not judged', async () => {
    const res = await cli(['drift', '--source', 'pump-1', '--from', '2026-01-07', '--to', '2026-01-08']);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/^pump-1: 20 recent rows against the baseline of \S+ \(PSI > 0\.25 or KS > 0\.3, higher for few rows, or a median far outside the trained range = drift\)$/m);
    // N: the rows the live model was trained on, its baseline's count; KS is judged by n_eff = n·N/(n + N).
    const N = Number((/with 20 rows against a baseline of (\d+) rows \(N\) the thresholds are raised/.exec(res.out) ?? [])[1]);
    expect(N).toBe(Object.values((await readBestRecord(container, 'pump-1'))!.record.baseline)[0]!.count);
    const ks = (1.95 / Math.sqrt((20 * N) / (20 + N))).toFixed(3).replace('.', '\\.');
    for (const feature of ['Current', 'Flow', 'Pressure']) expect(res.out).toMatch(new RegExp(`^ {2}${feature} .* 20 +- +${ks} {2}ok \\(PSI not judged: too few rows, 50 needed\\)$`, 'm'));
    expect(res.out).toMatch(/no drift$/);
  });

  it('still finds drift in 20 readings of a sensor that moved', async () => {
    const res = await cli(['drift', '--source', 'pump-1', '--from', '2026-01-08', '--to', '2026-01-09']);
    expect(res.code, res.out).toBe(3);
    expect(res.out).toMatch(/^ {2}Flow +\d+\.\d{3} +0\.9\d\d .* 20 +- +0\.4\d\d {2}DRIFT/m);
    expect(res.out).toMatch(/drift: Flow$/);
  });
});

describe('the progress bar on a terminal', () => {
  /** The last raw write before the first stdout or stderr line that matches `line`. */
  function rawBefore(log: { kind: string; text: string }[], line: RegExp): string | undefined {
    const at = log.findIndex((e) => e.kind !== 'raw' && line.test(e.text));
    expect(at, JSON.stringify(log)).toBeGreaterThan(0);
    return log.slice(0, at).filter((e) => e.kind === 'raw').at(-1)?.text;
  }

  it('is cleared before the error of a train with too few rows', async () => {
    const { code, log } = await onTerminal(['train', '--source', 'pump-few', '--from', '2026-01-05', '--to', '2026-01-06']);
    expect(code).toBe(1);
    expect(log.some((e) => e.kind === 'raw' && e.text.includes('train pump-few: cleaning'))).toBe(true);
    expect(rawBefore(log, /PW_TRAINER_NO_DATA/)).toBe(CLEAR);
  });

  it('is cleared before the message of a train that --if-drifted skipped', async () => {
    const { code, log } = await onTerminal(['train', '--source', 'pump-1', '--from', '2026-01-05', '--to', '2026-01-06', '--if-drifted']);
    expect(code).toBe(0);
    expect(rawBefore(log, /^pump-1: skipped: no drift/)).toBe(CLEAR);
  });

  it('is cleared before the error of a drift whose readings cannot be read', async () => {
    const { code, log } = await onTerminal(['drift', '--source', 'pump-1', '--from', '2026-01-09', '--to', '2026-01-10']);
    expect(code).toBe(1);
    expect(rawBefore(log, /not valid gzip/)).toBe(CLEAR);
  });

  it('is cleared before the error of an evaluate whose readings cannot be read', async () => {
    const { code, log } = await onTerminal(['evaluate', '--source', 'pump-1', '--from', '2026-01-09', '--to', '2026-01-10']);
    expect(code).toBe(1);
    expect(rawBefore(log, /not valid gzip/)).toBe(CLEAR);
  });

  it('names a blob that is not gzip by its error code, without a stack trace', async () => {
    const res = await cli(['drift', '--source', 'pump-1', '--from', '2026-01-09', '--to', '2026-01-10']);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/^pumpwatch-trainer drift: PW_SYNC_BLOB_CORRUPT: .*not valid gzip/m);
    expect(res.err).not.toMatch(/unexpected failure|\n\s+at /);
  });
});
