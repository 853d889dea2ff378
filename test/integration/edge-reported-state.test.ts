/**
 * The reported `state` summary on the local hub, with a real agent and a real SQLite buffer: a
 * reported patch merges into what the hub holds, so a field the agent no longer has must be sent
 * as null, or the hub keeps it. A buffer that could not open (its schema newer than the agent's)
 * and then opens: its error leaves the twin; while it is closed, the counts of the run before do.
 */
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { OPENABLE_FROM_KEY } from '../../buffer/migrations.js';
import { testAgentConfig } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { makeModel } from '../support/models.js';

const DEVICE = 'gw-state';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let dir: string;
const agents: Agent[] = [];

const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const state = () => (hub.reported(DEVICE, MODULE) as Record<string, any>).state as Record<string, any> | undefined;

async function startAgent(env: Record<string, string>): Promise<Agent> {
  const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_HUB: 'auto', PUMPWATCH_DEVICE_ID: DEVICE, EdgeModuleCACertificateFile: join(dir, 'hub-ca.pem'), ...env });
  const agent = new Agent({ config, logger: createLogger('silent'), defaultModelPath: join(dir, 'model.onnx') });
  agents.push(agent);
  await agent.start();
  return agent;
}

/**
 * Sets the buffer file's schema version, marked for agents of that schema as the agent of that
 * schema leaves it (the agent refuses a file whose version is newer than it knows, unless marked for it).
 */
function setSchemaVersion(version: number): void {
  const db = new Database(join(dir, 'data', 'buffer.sqlite'));
  try {
    db.prepare('UPDATE schema_version SET version = ?').run(version);
    db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(version), OPENABLE_FROM_KEY);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-state-'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'model.onnx'), makeModel({ version: 'state-1' }));
  hub = await LocalHub.start();
  writeFileSync(join(dir, 'hub-ca.pem'), hub.ca);
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the reported state of the buffer', () => {
  it('deletes the counts while the buffer is closed and the error once it opens, instead of keeping both', async () => {
    const connectionString = hub.addModule(DEVICE, MODULE);
    const first = await startAgent({ PUMPWATCH_MODULE_CONNECTION_STRING: connectionString });
    await first.pipeline.ingest([{ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }], 'test');
    await first.pipeline.ingest([{ pumpId: 'pump-bad', ts: Date.now(), values: { Pressure: 'x' } }], 'test');
    edgeRuntimeOf(first)!.reporter.changed();
    await until(() => expect(state()?.buffer).toMatchObject({ rows: 1, unsynced: 1, maxBytes: first.config.bufferMaxBytes }));
    expect(state()!.buffer.error).toBeUndefined();
    // The counters; not the per-pump refusals, whose pumps come and go (and would not fit the 32 KB)
    expect(state()!.readings).toMatchObject({ accepted: 1, rejected: 1 });
    expect(state()!.readings).not.toHaveProperty('refusedByPump');
    // /healthz in short, for a fleet's twin query (IoT Edge does not act on a container's health check)
    expect(state()!.health).toEqual({ status: 'ok', problems: [] });
    // What it reads, which `deploy` checks a model against before it sends the gateway that model.
    expect(state()).toMatchObject({ modelContracts: [1, 2], modelRules: ['stopped-when', 'stuck-after'] });
    await first.stop();

    const db = new Database(join(dir, 'data', 'buffer.sqlite'), { readonly: true });
    const version = (db.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
    db.close();
    setSchemaVersion(version + 1); // a newer agent migrated it, then this one came back

    const second = await startAgent({ PUMPWATCH_MODULE_CONNECTION_STRING: connectionString });
    await until(() => expect(state()?.buffer?.error).toBe('the buffer is not open'));
    expect(state()!.buffer).toEqual({ error: state()!.buffer.error }); // not the first run's rows beside it
    await until(() => expect(state()?.health?.status).toBe('failing'));
    expect(state()!.health.problems).toEqual([expect.stringMatching(/^buffer: .{10,}/)]);
    expect(state()!.health.problems[0].length).toBeLessThanOrEqual(200);

    setSchemaVersion(version); // the file is the agent's own again
    await second.reopenBuffer();
    edgeRuntimeOf(second)!.reporter.changed();
    await until(() => expect(state()?.buffer).toMatchObject({ rows: 1, unsynced: 1 }));
    expect(state()!.buffer).not.toHaveProperty('error');
    expect(state()!.health).toEqual({ status: 'ok', problems: [] }); // the array replaced whole: nothing left of the problem
  });
});
