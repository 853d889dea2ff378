/**
 * Which input message each PUBACK acknowledges, watched on the local hub's broker: a message is
 * acknowledged only once its own readings committed, also when two carry the same `$.mid` (a
 * sender's retry), when messages carry none, and across a reconnection; and twin traffic goes on
 * while as many inputs wait as edgeHub keeps in flight (16).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { MAX_HELD_INPUTS } from '../../agent/edge/transport.js';

const DEVICE = 'gw-ack';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let db: Database.Database;
let writer: Database.Database;
const random = rng(21);
let tick = 0;
/** Payloads (utf8) of the input messages the broker saw acknowledged, in order. */
const acked: string[] = [];

const until = <T>(fn: () => T, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 50 });
const count = (pump: string) => (db.prepare('SELECT count(*) n FROM readings WHERE pump_id = ?').get(pump) as { n: number }).n;
const body = (pumpId: string) => JSON.stringify({ pumpId, ts: new Date(Date.now() - 30_000 + tick).toISOString(), values: normalValues(random, tick++) });
const held = () => edgeRuntimeOf(t.agent)!.gate.size;
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;

/** The hub's broker (aedes), to publish with any topic and to watch PUBACKs. */
const broker = () => (hub as unknown as { broker: { publish(topic: string, payload: Buffer): Promise<void>; aedes: { on(e: 'ack', f: (p: { payload?: Buffer } | null) => void): void } } }).broker;
const watchAcks = () => broker().aedes.on('ack', (p) => p?.payload && acked.push(Buffer.from(p.payload).toString('utf8')));
/** Publishes an input message with exactly these properties (`$.mid` included or not). */
const publish = (payload: string, bag: Record<string, string>) => {
  const encoded = Object.entries(bag).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return broker().publish(`devices/${DEVICE}/modules/${MODULE}/inputs/readings/${encoded}`, Buffer.from(payload));
};
/** Inserts into readings fail for these pumps (a real SQLite failure) until failOnly() is called again. */
const failOnly = (...pumps: string[]) => {
  writer.exec('DROP TRIGGER IF EXISTS fail_some');
  if (pumps.length === 0) return;
  const list = pumps.map((p) => `'${p}'`).join(',');
  writer.exec(`CREATE TRIGGER fail_some BEFORE INSERT ON readings WHEN NEW.pump_id IN (${list}) BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END`);
};

/** Restarts the hub's broker (the module reconnects); `loseSession`: with a fresh session store. */
async function reconnectBroker(loseSession = false): Promise<void> {
  await hub.stopBroker();
  // A fresh session store: a persistent session that expired, or edgeHub restarted without its store.
  if (loseSession) (broker() as unknown as { persistence: unknown }).persistence = undefined;
  await hub.startBroker();
  watchAcks();
  await until(() => expect(hub.isConnected(DEVICE, MODULE)).toBe(true));
}

/** `pending` stays unacknowledged (its readings are failing) after the others were handled. */
async function expectNotAcked(pending: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  expect(acked).not.toContain(pending); // its readings are not committed
}

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  t = await startHubAgent(hub, connectionString, DEVICE);
  db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
  writer = new Database(join(t.dir, 'data', 'buffer.sqlite'));
  // Inputs, and desired patches (a patch sent before the agent subscribes is not delivered to it).
  await until(() => expect(hub.subscriptions(DEVICE, MODULE).some((f) => f.includes('/inputs/'))).toBe(true));
  await until(() => expect(hub.subscriptions(DEVICE, MODULE).some((f) => f.startsWith('$iothub/twin/PATCH/properties/desired'))).toBe(true));
  watchAcks();
});

afterAll(async () => {
  if (writer?.open) failOnly();
  writer?.close();
  db?.close();
  await t?.stop();
  await hub?.stop();
});

describe('input acknowledgements on the local hub', () => {
  it('goes on reading twin patches while as many inputs as edgeHub keeps in flight wait for a commit', async () => {
    failOnly('window');
    const ids: string[] = [];
    try {
      for (let i = 0; i < MAX_HELD_INPUTS; i++) ids.push(await hub.deliverToInput(DEVICE, MODULE, 'readings', body('window')));
      await until(() => expect(held()).toBe(MAX_HELD_INPUTS));
      const patch = hub.updateDesired(DEVICE, MODULE, { buffer: { retentionHours: 14 } });
      await until(() => expect(reported().buffer).toMatchObject({ ac: 200, av: patch }), 10_000);
      expect(ids.filter((id) => hub.isCompleted(id))).toEqual([]);
    } finally {
      failOnly();
    }
    await Promise.all(ids.map((id) => hub.completed(id)));
    expect(count('window')).toBe(MAX_HELD_INPUTS);
  });

  it('acknowledges each of two messages with the same $.mid only after its own readings commit', async () => {
    failOnly('dup-a', 'dup-b');
    const mid = randomUUID();
    const a = body('dup-a');
    const b = body('dup-b');
    try {
      await publish(a, { '$.mid': mid });
      await publish(b, { '$.mid': mid });
      await new Promise((r) => setTimeout(r, 500)); // both wait for a commit
      failOnly('dup-b');
      await until(() => expect(count('dup-a')).toBe(1));
      await until(() => expect(acked).toContain(a), 5_000);
      await expectNotAcked(b);
    } finally {
      failOnly();
    }
    await until(() => expect(acked).toContain(b));
    expect(count('dup-b')).toBe(1);
  });

  it('does not take a QoS 0 input\'s release for the PUBACK of the next message without $.mid', async () => {
    // The SDK subscribes at QoS 1, but a broker may deliver a message at the QoS it was sent with.
    const direct = (payload: string) =>
      (broker() as unknown as { sendDirect(clientId: string, filter: string, topic: string, payload: string): boolean }).sendDirect(
        `${DEVICE}/${MODULE}`,
        hub.subscriptions(DEVICE, MODULE).find((f) => f.includes('/inputs/'))!,
        `devices/${DEVICE}/modules/${MODULE}/inputs/readings/source=q0`,
        payload,
      );
    failOnly('q-first', 'q1-after');
    const first = body('q-first');
    const q0 = body('q0-then');
    const q1 = body('q1-after');
    try {
      // All three wait behind the first: the QoS 0 one is stored only once q1 is held.
      await publish(first, { '$.mid': randomUUID() });
      expect(direct(q0)).toBe(true);
      await publish(q1, { source: 'q1' }); // no $.mid: held as the next anonymous message
      await until(() => expect(held()).toBeGreaterThanOrEqual(2));
      failOnly('q1-after');
      await until(() => expect(count('q0-then')).toBe(1));
      await expectNotAcked(q1);
    } finally {
      failOnly();
    }
    await until(() => expect(acked).toContain(q1));
    expect(count('q1-after')).toBe(1);
  });

  it('stores messages waiting across a reconnection once: the copies of the connection that is gone are dropped, the broker delivers them again', async () => {
    failOnly('redo');
    const bodies = [body('redo'), body('redo'), body('redo')];
    try {
      for (const b of bodies) await publish(b, { '$.mid': randomUUID() });
      await until(() => expect(held()).toBe(3));
      await reconnectBroker();
      await until(() => expect(held()).toBe(3)); // delivered again on the new connection
    } finally {
      failOnly();
    }
    for (const b of bodies) await until(() => expect(acked).toContain(b));
    await new Promise((r) => setTimeout(r, 500));
    expect(count('redo')).toBe(3); // not 6
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/pumpwatch_edge_input_messages_total\{result="redelivered"\} 3/);
  });

  it('stores a message that waited across a reconnection when the broker lost its session, so nothing is delivered again', async () => {
    failOnly('lost');
    const lost = body('lost');
    try {
      await publish(lost, { '$.mid': randomUUID() });
      await until(() => expect(held()).toBe(1));
      await reconnectBroker(true);
      await new Promise((r) => setTimeout(r, 1500)); // the waiting copy retries on the new connection
    } finally {
      failOnly();
    }
    await until(() => expect(count('lost')).toBeGreaterThanOrEqual(1));
    // Settle, then the exact count: stopping at the first row would miss a duplicate stored a moment later.
    await new Promise((r) => setTimeout(r, 500));
    expect(count('lost')).toBe(1);
  });

  it('never acknowledges a message of a new connection for one of the connection before, also without $.mid', async () => {
    failOnly('anon-a', 'anon-b');
    const a = body('anon-a');
    const b = body('anon-b');
    try {
      await publish(a, { source: 'a' });
      await until(() => expect(held()).toBe(1));
      await reconnectBroker();
      await until(() => expect(held()).toBe(1)); // a, delivered again on the new connection
      await publish(b, { source: 'b' });
      await until(() => expect(held()).toBe(2));
      failOnly('anon-b');
      await until(() => expect(count('anon-a')).toBeGreaterThanOrEqual(2)); // both deliveries: without $.mid the copies cannot be matched
      await until(() => expect(acked).toContain(a), 5_000);
      await expectNotAcked(b);
    } finally {
      failOnly();
    }
    await until(() => expect(acked).toContain(b));
    expect(count('anon-b')).toBe(1);
  });
});
