import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, normalValues, rng } from '../support/models.js';
import { freePort, startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-'));
  const model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'e2e-1' }));
  env = { PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_DEFAULT_MODEL: model };
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

/**
 * Posts batches of readings with unique markers, two requests in flight, until `stop()` is called
 * or the agent dies. Returns the markers of every reading acknowledged with 202.
 */
function stream(agent: AgentProcess, start: number) {
  const acked = new Set<number>();
  let next = start;
  let stopped = false;
  const r = rng(start);
  const worker = async (): Promise<void> => {
    while (!stopped) {
      const batch = Array.from({ length: 25 }, () => {
        const n = next++;
        return { pumpId: `pump-${n % 4}`, ts: Date.now(), values: { ...normalValues(r, n), marker: n } };
      });
      try {
        const res = await fetch(`${agent.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
        if (res.status === 202) for (const b of batch) acked.add(b.values.marker);
        else await res.text();
      } catch {
        return; // connection refused or reset: the agent is gone
      }
    }
  };
  const done = Promise.all([worker(), worker()]);
  return { acked, done, stop: () => (stopped = true), next: () => next };
}

describe('the agent process killed with SIGKILL mid-stream', () => {
  it('keeps every reading acknowledged with 202 exactly once, with its prediction, across three kills', async () => {
    const acked = new Set<number>();
    const port = await freePort();
    let marker = 0;
    let lastMaxSeq = 0;
    for (let round = 0; round < 3; round++) {
      const agent = await startAgentProcess(env, port);
      await agent.waitReady();
      const s = stream(agent, marker);
      await new Promise((res) => setTimeout(res, 400 + round * 150));
      agent.proc.kill('SIGKILL');
      await agent.exited;
      s.stop();
      await s.done;
      for (const m of s.acked) acked.add(m);
      marker = s.next() + 1000;
      const db = new Database(join(dir, 'data', 'buffer.sqlite'), { readonly: true });
      const maxSeq = (db.prepare('SELECT max(seq) AS m FROM readings').get() as { m: number }).m;
      db.close();
      expect(maxSeq).toBeGreaterThan(lastMaxSeq); // sequence numbers keep growing across restarts
      lastMaxSeq = maxSeq;
    }
    expect(acked.size).toBeGreaterThan(100);

    // A last clean run: SIGTERM stops it with exit code 0.
    const agent = await startAgentProcess(env, port);
    await agent.waitReady();
    const t0 = Date.now();
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);

    const db = new Database(join(dir, 'data', 'buffer.sqlite'), { readonly: true });
    const rows = db.prepare("SELECT json_extract(vals, '$.marker') AS marker, score, model_version, seq FROM readings").all() as Array<{ marker: number; score: number | null; model_version: string; seq: number }>;
    db.close();
    const seen = new Map<number, number>();
    for (const row of rows) seen.set(row.marker, (seen.get(row.marker) ?? 0) + 1);
    const missing = [...acked].filter((m) => !seen.has(m));
    const duplicated = [...seen].filter(([, n]) => n > 1);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
    const byMarker = new Map(rows.map((r) => [r.marker, r]));
    for (const m of acked) {
      expect(byMarker.get(m)!.score).not.toBeNull();
      expect(byMarker.get(m)!.model_version).toBe('e2e-1');
    }
  }, 120_000);
});
