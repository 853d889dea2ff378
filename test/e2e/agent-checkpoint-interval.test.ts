import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, normalValues, rng } from '../support/models.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-ckpt-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'e2e-1' }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

const dbSize = (dataDir: string): number => statSync(join(dataDir, 'buffer.sqlite')).size;

async function postReadings(agent: AgentProcess, n: number): Promise<void> {
  const r = rng(3);
  const body = Array.from({ length: n }, (_, i) => ({ pumpId: `pump-${i % 12}`, ts: Date.now() - (n - i) * 10, values: normalValues(r, i) }));
  const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  await res.text();
}

describe('PUMPWATCH_CHECKPOINT_INTERVAL_MS (fewer checkpoints on SD cards)', () => {
  it('leaves committed rows in the WAL until the interval is over, and they survive a SIGKILL', async () => {
    // Two agents side by side: one checkpointing every 200 ms shows when a checkpoint has had time
    // to run; the one with an hour's interval must not have run one by then.
    const fastDir = join(dir, 'fast');
    const slowDir = join(dir, 'slow');
    const fast = await startAgentProcess({ PUMPWATCH_DATA_DIR: fastDir, PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_CHECKPOINT_INTERVAL_MS: '200' });
    const slow = await startAgentProcess({ PUMPWATCH_DATA_DIR: slowDir, PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_CHECKPOINT_INTERVAL_MS: '3600000' });
    try {
      await Promise.all([fast.waitReady(), slow.waitReady()]);
      const fastBefore = dbSize(fastDir);
      const slowBefore = dbSize(slowDir);
      await postReadings(slow, 2000);
      await postReadings(fast, 2000);
      // The fast agent's checkpoint copies the rows into its database file (it grows by their pages).
      for (let i = 0; i < 200 && dbSize(fastDir) <= fastBefore + 65536; i++) await new Promise((res) => setTimeout(res, 50));
      expect(dbSize(fastDir)).toBeGreaterThan(fastBefore + 65536);
      // Twice more the old fixed 500 ms, for good measure.
      await new Promise((res) => setTimeout(res, 1000));
      expect(dbSize(slowDir)).toBe(slowBefore);

      slow.proc.kill('SIGKILL');
      await slow.exited;
      // The rows were only in the WAL, fsynced at each commit: a reopen replays them.
      const db = new Database(join(slowDir, 'buffer.sqlite'), { readonly: true });
      try {
        expect((db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n).toBe(2000);
      } finally {
        db.close();
      }
    } finally {
      for (const a of [fast, slow]) if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGKILL');
      await Promise.all([fast.exited, slow.exited]);
    }
  });
});
