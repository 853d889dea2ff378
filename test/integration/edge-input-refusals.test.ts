/**
 * Refused edgeHub input messages, sent through the local hub to a real agent: every refusal is
 * stored and acknowledged, but the log gets one line per kind, then at most one a minute with the
 * count (a sensor module with a wrong clock sends ten a second: 240 MB of log a day otherwise).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestAgent } from '../support/agent.js';
import { loggedHubAgent } from '../support/hub-agents.js';
import type { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-refusals';
const MODULE = 'pumpwatch';
const DAY = 86_400_000;
let hub: LocalHub;
let t: TestAgent;
let mono = 1_000_000;
let lines: Array<Record<string, any>> = [];
let stop: (() => Promise<void>) | undefined;

const ahead = (n: number) => JSON.stringify({ pumpId: 'pump-skew', ts: Date.now() + 3 * DAY + n, values: { Pressure: 0.4 } });
/** Delivers the bodies to input `readings` and waits until the agent acknowledged every one. */
async function deliver(bodies: string[]): Promise<void> {
  const ids: string[] = [];
  for (const body of bodies) ids.push(await hub.deliverToInput(DEVICE, MODULE, 'readings', body));
  await Promise.all(ids.map((id) => hub.completed(id)));
}
const logged = (prefix: string) => lines.filter((l) => String(l.msg).startsWith(prefix));

beforeAll(async () => {
  ({ hub, t, lines, stop } = await loggedHubAgent(DEVICE, MODULE, { monotonic: () => mono }));
});

afterAll(async () => {
  await stop?.();
});

describe('refused input messages in the log', () => {
  it('logs the first refusal of each kind, then one line a minute with the count, and stores every one', async () => {
    await deliver(Array.from({ length: 30 }, (_, i) => ahead(i)));
    await deliver(Array.from({ length: 5 }, () => '{"pumpId": "pump-skew", '));

    const readings = logged('readings in an input message rejected');
    expect(readings).toHaveLength(1);
    expect(readings[0]).toMatchObject({ level: 40, input: 'readings', rejected: 1, first: expect.stringMatching(/^ts: .* ahead of the gateway clock/) });
    const messages = logged('input message rejected');
    expect(messages).toHaveLength(1);
    expect(messages[0]!.reason).toMatch(/^body is not valid JSON/);

    mono += 61_000; // a minute later, the same sensor still sends them
    await deliver([ahead(30)]);
    const after = logged('readings in an input message rejected');
    expect(after).toHaveLength(2);
    expect(after[1]).toMatchObject({ msg: 'readings in an input message rejected (30 more in the last 61 s)', repeats: 30, failures: 31 });
    expect(logged('input message rejected')).toHaveLength(1);

    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) n FROM rejected WHERE source = 'edge'").get() as { n: number }).n).toBe(36);
    } finally {
      db.close();
    }
  });

  it('refuses a reading dated beyond what a Date holds and goes on with the message and the next ones', async () => {
    // ts 1e20 (beyond the year 275760): its refusal's wording threw, the message was retried for
    // ever without an acknowledgement, and every message after it waited behind it (security review).
    const now = Date.now();
    const good = (pumpId: string, ts: number) => ({ pumpId, ts, values: { Pressure: 0.4 } });
    await deliver([JSON.stringify([good('pump-far', now), { pumpId: 'pump-far', ts: 1e20, values: { Pressure: 0.5 } }]), JSON.stringify(good('pump-after', now + 1))]);

    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      const pumps = db.prepare("SELECT pump_id p FROM readings WHERE pump_id IN ('pump-far', 'pump-after') ORDER BY seq").all() as Array<{ p: string }>;
      expect(pumps.map((r) => r.p)).toEqual(['pump-far', 'pump-after']);
      const refused = db.prepare("SELECT reason FROM rejected WHERE source = 'edge' AND reason LIKE 'ts: 100000000000000000000 %'").all() as Array<{ reason: string }>;
      expect(refused).toHaveLength(1);
      expect(refused[0]!.reason).toMatch(/^ts: 100000000000000000000 is more than 86400 s \(.*\) ahead of the gateway clock \(\d{4}-.*\) \(epoch milliseconds are expected: is it in microseconds\?\)$/);
    } finally {
      db.close();
    }
    expect(lines.filter((l) => String(l.msg).startsWith('input message could not be committed'))).toEqual([]);
  });
});

