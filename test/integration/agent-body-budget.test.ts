/**
 * Bodies held at once are bounded (agent/http/byte-budget.ts): with a small body limit, concurrent
 * posts that together exceed it wait for their turn and are all committed, none refused (the
 * bound itself: test/unit/byte-budget.test.ts).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { normalValues, rng } from '../support/models.js';

let t: TestAgent;

beforeAll(async () => {
  t = await startTestAgent({ PUMPWATCH_MAX_BODY_BYTES: '8192' });
});

afterAll(async () => {
  await t.stop();
});

describe('POST /readings under a body budget', () => {
  it('commits every reading of 12 concurrent posts whose bodies together are 4 times the budget', async () => {
    const r = rng(4);
    const bodies = Array.from({ length: 12 }, (_, k) =>
      JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ pumpId: `budget-${k}`, ts: Date.now(), values: normalValues(r, i) }))),
    );
    const total = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
    expect(total).toBeGreaterThan(4 * 8192);
    expect(Math.max(...bodies.map((b) => Buffer.byteLength(b)))).toBeLessThan(8192);
    const statuses = await Promise.all(
      bodies.map(async (body) => {
        const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses).toEqual(Array(12).fill(202));
    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) AS n FROM readings WHERE pump_id LIKE 'budget-%'").get() as { n: number }).n).toBe(360);
    } finally {
      db.close();
    }
  });
});
