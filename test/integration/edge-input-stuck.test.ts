/**
 * An edgeHub input message that cannot be committed, sent through the local hub to a real agent
 * whose buffer is full (SQLite's `max_page_count` at the file's size, SQLITE_FULL as on a full
 * disk, as in edge-silent-pump-hub.test.ts): a message too large for what an eviction frees is
 * retried, while small POST /readings still commit (each evicts for its room) and clear the
 * buffer's failure. /healthz said ok then; it now says `degraded`, naming the input, once the
 * message has failed for a minute (the agent's monotonic clock moved by the test), stays quiet
 * while the buffer check itself fails, and is ok again once the message commits.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, type TestAgent } from '../support/agent.js';
import { loggedHubAgent } from '../support/hub-agents.js';
import type { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-stuck-input';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let mono = 1_000_000;
let lines: Array<Record<string, any>> = [];
let stop: (() => Promise<void>) | undefined;

const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 30_000, interval: 20 });
const healthz = async (): Promise<{ status: string; degraded: string[]; failing: string[]; checks: Record<string, string> }> => (await fetch(`${t.url}/healthz`)).json() as never;
const failures = () => lines.filter((l) => l.msg === 'input message could not be committed; retrying (not acknowledged)').length;
const readings = (pumpId: string, start: number, n: number) => Array.from({ length: n }, (_, i) => ({ pumpId, ts: start + i * 1000, values: { Pressure: 0.4 + (i % 7) / 100, Current: 1.2 } }));

beforeAll(async () => {
  ({ hub, t, lines, stop } = await loggedHubAgent(DEVICE, MODULE, { monotonic: () => mono }));
});

afterAll(async () => {
  await stop?.();
});

describe('an input message that cannot be committed', () => {
  it('makes /healthz degraded naming the input once it has failed for a minute while the buffer takes other readings, not while the buffer check fails, and ok once it commits', async () => {
    const start = Date.now() - 3_600_000;
    for (let k = 0; k < 4; k++) expect((await postJson(`${t.url}/readings`, readings('pump-http', start + k * 500_000, 500))).status).toBe(202);
    const { db } = t.agent.buffer;
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`); // the disk is full
    try {
      const id = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify(readings('pump-edge', start, 1000)));
      await until(() => expect(failures()).toBeGreaterThanOrEqual(1));
      // Failing for less than a minute: said by the buffer check, not by the input.
      expect(await healthz()).toMatchObject({ status: 'failing', failing: ['buffer'], degraded: [] });

      mono += 61_000;
      const seen = failures();
      await until(() => expect(failures()).toBeGreaterThan(seen));
      // The buffer check fails with the cause: the input does not say it again.
      expect(await healthz()).toMatchObject({ status: 'failing', failing: ['buffer'], degraded: [] });

      // Right after a failed attempt (the next one is at least 1 s away), a sensor's POST commits:
      // the buffer works, the message does not, and /healthz says so.
      const before = failures();
      await until(() => expect(failures()).toBeGreaterThan(before));
      expect((await postJson(`${t.url}/readings`, readings('pump-http', start + 2_000_000, 1))).status).toBe(202);
      const h = await healthz();
      expect(h).toMatchObject({ status: 'degraded', failing: [], degraded: ['inputs'], checks: { buffer: 'ok' } });
      expect(h.checks.inputs).toMatch(/^input "readings": a message not committed since \d{4}-\d\d-\d\dT[\d:.]+Z \(\d+ attempts; not acknowledged, so edgeHub holds it and the messages after it\): PW_BUFFER_DISK_FULL: committing readings: the disk holding .* is full/);

      db.pragma('max_page_count = 1073741823'); // room again
      await hub.completed(id);
    } finally {
      db.pragma('max_page_count = 1073741823');
    }
    expect(await healthz()).toMatchObject({ status: 'ok', degraded: [], checks: { inputs: 'ok' } });
  });
});
