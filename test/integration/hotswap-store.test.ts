/**
 * The model store on disk under model updates, restarts and rollbacks, with real model files over
 * a real HTTP server, real onnxruntime sessions and a real SQLite buffer: a desired entry that
 * names the running version with other bytes never costs the running model or its rollback target;
 * a data dir written before files carried their sha256 still restores its models without a
 * download; files nothing refers to (an old version, the folder of a removed pump) go at every
 * reconcile, while start-up deletes only what can never be used (a crash's temp file), so a model
 * stored but not switched in when the agent stopped is taken from the store; a buffer that opens
 * late brings back the models it persisted unless the twin activated or removed another meanwhile;
 * and the updater's log lines name their component once.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { BufferStore } from '../../buffer/store.js';
import { saveState, type PersistedModels } from '../../inference/model-state.js';
import { ModelStore } from '../../inference/model-store.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { nanBelowModel } from '../support/broken-models.js';
import { ModelServer, sha256 } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let server: ModelServer;
const random = rng(29);
let t = 0;
let lastTs = 0;
const dirs: string[] = [];
let running: { agent: Agent; updater: ModelUpdater } | null = null;

/** A gateway's folder: the start-up model, and `data/` as PUMPWATCH_DATA_DIR. */
function gateway(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-store-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  return dir;
}

/** Starts the agent on the gateway's data dir with its model updater (as the edge client builds it); `raw` gets every log line as written. */
async function start(dir: string, raw: string[] = []): Promise<{ agent: Agent; updater: ModelUpdater }> {
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  const logger = createLogger('info', { write: (line: string) => void raw.push(line) });
  const agent = new Agent({ config, logger, defaultModelPath: join(dir, 'bundled.onnx') });
  await agent.start();
  const updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 20 }, downloadAttempts: 2, retryBackoff: { baseMs: 3_600_000, capMs: 3_600_000 } }).updater;
  running = { agent, updater };
  return running;
}

/** A restart: the agent stops cleanly (a kill loses nothing more: the store and the state are written before the switch). */
async function stop(): Promise<void> {
  await running?.updater.stop();
  await running?.agent.stop();
  running = null;
}

async function desire(updater: ModelUpdater, models: Record<string, DesiredModel>): Promise<void> {
  updater.setDesired(models);
  await updater.idle();
}

function readings(pumpId: string, n: number, values?: Record<string, number>): Array<{ pumpId: string; ts: number; values: Record<string, number> }> {
  return Array.from({ length: n }, () => ({ pumpId, ts: (lastTs = Math.max(Date.now(), lastTs + 1)), values: values ?? normalValues(random, t++) }));
}

/** The model version that scored each of the readings, and whether each score is a finite number. */
async function scoredBy(agent: Agent, items: ReturnType<typeof readings>): Promise<Array<[string | null, boolean]>> {
  const seqs = (await agent.pipeline.ingest(items, 'test')).seqs;
  return agent.buffer.rowsBySeq(seqs[0]!, seqs.at(-1)!).map((r) => [r.modelVersion, typeof r.score === 'number' && Number.isFinite(r.score)]);
}

const files = (dir: string, key = 'default'): string[] => (existsSync(join(dir, 'data', 'models', key)) ? readdirSync(join(dir, 'data', 'models', key)).sort() : []);
const named = (version: string, bytes: Uint8Array): string => `${version}.${sha256(bytes).slice(0, 16)}.onnx`;
const requestsFor = (entry: DesiredModel): number => server.requests.filter((r) => entry.url.includes(r.path)).length;
const persisted = (agent: Agent): PersistedModels => JSON.parse(agent.buffer.getMeta('models.state') ?? '{}') as PersistedModels;

/** What an agent before the sha256 in file names left: `<key>/<version>.onnx` files, and the state in the buffer. */
function oldDataDir(dir: string, models: Record<string, Uint8Array>, state: PersistedModels): void {
  mkdirSync(join(dir, 'data', 'models', 'default'), { recursive: true });
  for (const [name, bytes] of Object.entries(models)) writeFileSync(join(dir, 'data', 'models', 'default', name), bytes);
  const buffer = new BufferStore({ path: join(dir, 'data', 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  saveState(buffer, state);
  buffer.close();
}

/**
 * The buffer (with `state` persisted) is out of reach at the next start: a folder stands where its
 * file should be. Returns what puts it back, as a disk that comes back does.
 */
function bufferOutOfReach(dir: string, state: PersistedModels): () => void {
  oldDataDir(dir, {}, state);
  const db = join(dir, 'data', 'buffer.sqlite');
  const aside = join(dir, 'buffer-aside');
  mkdirSync(aside);
  for (const f of readdirSync(join(dir, 'data')).filter((n) => n.startsWith('buffer.sqlite'))) renameSync(join(dir, 'data', f), join(aside, f));
  mkdirSync(db);
  return () => {
    rmSync(db, { recursive: true });
    for (const f of readdirSync(aside)) renameSync(join(aside, f), join(dir, 'data', f));
  };
}

/** Writes a model file into the store as the agent names it. */
function stored(dir: string, key: string, version: string, bytes: Uint8Array): void {
  mkdirSync(join(dir, 'data', 'models', key), { recursive: true });
  writeFileSync(join(dir, 'data', 'models', key, named(version, bytes)), bytes);
}

beforeAll(async () => {
  server = await ModelServer.start();
});

afterEach(async () => {
  await stop();
});

afterAll(async () => {
  await server?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('a desired entry that names the running version with other bytes', () => {
  it("refuses bytes that do not load without touching the running model's file, which a restart restores", async () => {
    const dir = gateway();
    const A = makeModel({ version: 'v1', seed: 31 });
    const eA = server.add('same-i-a.onnx', A, 'v1');
    let { agent, updater } = await start(dir);
    await agent.pipeline.ingest(readings('p1', 10), 'test');
    await desire(updater, { default: eA });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'active', activeVersion: 'v1' });

    // A hand-written entry, or a broken blob, under the running version: its sha256 is stated, so the download verifies.
    const garbage = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31) % 253));
    const eG = server.add('same-i-garbage.onnx', garbage, 'v1');
    await desire(updater, { default: eG });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'rejected', activeVersion: 'v1' });
    // The store still holds A, and nothing of the refused bytes.
    expect(files(dir).map((f) => sha256(readFileSync(join(dir, 'data', 'models', 'default', f))))).toEqual([eA.sha256]);
    expect(files(dir)).toEqual([named('v1', A)]);

    await stop(); // a module update, a power cut
    ({ agent, updater } = await start(dir));
    // Before the twin is read, the refusal saved is shown beside the model restored (it was hidden until the twin read).
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'rejected', error: expect.stringMatching(/./), activeVersion: 'v1' });
    await desire(updater, { default: eG }); // the twin read after the restart: still refused, A keeps scoring
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'rejected', activeVersion: 'v1' });
    expect(await scoredBy(agent, readings('p1', 2))).toEqual([['v1', true], ['v1', true]]);
    expect(requestsFor(eA)).toBe(1);
  });

  it('rolls back to the bytes that ran before when the new ones fault on live data', async () => {
    const dir = gateway();
    const A = makeModel({ version: 'v1', seed: 32 });
    const B = nanBelowModel('v1'); // loads and validates on normal readings, NaN on readings near 0
    const eA = server.add('same-ii-a.onnx', A, 'v1');
    const eB = server.add('same-ii-b.onnx', B, 'v1');
    const raw: string[] = [];
    const { agent, updater } = await start(dir, raw);
    await agent.pipeline.ingest(readings('p1', 10), 'test');
    await desire(updater, { default: eA });
    await desire(updater, { default: eB });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'active' });
    expect(persisted(agent).live['default']).toMatchObject({ sha256: eB.sha256, previous: { kind: 'store', version: 'v1', sha256: eA.sha256 } });

    await agent.pipeline.ingest(readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }), 'test');
    await agent.models.idle();
    expect(agent.models.status()['default']).toMatchObject({ version: 'v1', status: 'rolled-back', activeVersion: 'v1' });
    expect(persisted(agent).live['default']).toMatchObject({ version: 'v1', sha256: eA.sha256 });
    expect(raw.filter((l) => l.includes('previous model unusable'))).toEqual([]);
    // A scores again (B would give NaN on these), and B's file went with the rollback.
    expect(await scoredBy(agent, readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }))).toEqual([['v1', true], ['v1', true]]);
    expect(files(dir)).toEqual([named('v1', A)]);
  });
});

describe('a refusal saved before a restart', () => {
  it('is shown again beside the model restored before the twin is read: a rollback, and a refused shadow, on a gateway that stays offline; not a download refused for its URL', async () => {
    // Before, /status showed the fallback as active with no error until the twin was read, so a
    // gateway offline after a restart hid that its deployed model had been rolled back.
    const dir = gateway();
    const a1 = makeModel({ version: 'a1', seed: 34 });
    const e1 = server.add('restart-a1.onnx', a1, 'a1');
    const e2 = server.add('restart-a2.onnx', nanBelowModel('a2'), 'a2');
    const garbage = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) % 251));
    const eS = { ...server.add('restart-s1.onnx', garbage, 's1'), shadow: true };
    // a download refused for what its URL answered: not shown after a restart (it holds only for that URL)
    const eU = server.add('restart-u1.onnx', makeModel({ version: 'u1', seed: 35 }), 'u1', { kind: 'status', status: 403 });
    let { agent, updater } = await start(dir);
    await agent.pipeline.ingest(readings('p1', 10), 'test');
    await desire(updater, { default: e1 });
    await desire(updater, { default: e2, p2: eS, p3: eU });
    expect(agent.models.status()['p3']).toMatchObject({ version: 'u1', status: 'rejected' });
    await agent.pipeline.ingest(readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }), 'test');
    await agent.models.idle();
    const rolledBack = agent.models.status()['default'];
    expect(rolledBack).toMatchObject({ version: 'a2', status: 'rolled-back', activeVersion: 'a1' });
    const shadowRefused = agent.models.status()['p2']?.shadow;
    expect(shadowRefused).toMatchObject({ version: 's1', status: 'rejected' });

    await stop();
    ({ agent, updater } = await start(dir));
    expect(agent.models.status()['default']).toMatchObject({ version: 'a2', status: 'rolled-back', error: rolledBack!.error, activeVersion: 'a1' });
    expect(agent.models.status()['p2']?.shadow).toMatchObject({ version: 's1', status: 'rejected', error: shadowRefused!.error });
    expect(agent.models.status()['p3']?.status).not.toBe('rejected');
    expect(await scoredBy(agent, readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }))).toEqual([['a1', true], ['a1', true]]);
    // The twin read says the same, and the rolled-back version is not downloaded again.
    const asked = requestsFor(e2);
    await desire(updater, { default: e2, p2: eS, p3: eU });
    expect(agent.models.status()['default']).toMatchObject({ version: 'a2', status: 'rolled-back', activeVersion: 'a1' });
    expect(requestsFor(e2)).toBe(asked);
  });
});

describe('a data dir written before files carried their sha256', () => {
  it('restores the live model without a download, keeps its rollback target, and rolls back to it', async () => {
    const dir = gateway();
    const v1 = makeModel({ version: 'v1', seed: 33 });
    const v2 = nanBelowModel('v2');
    oldDataDir(dir, { 'v1.onnx': v1, 'v2.onnx': v2 }, {
      live: { default: { version: 'v2', sha256: sha256(v2), previous: { kind: 'store', version: 'v1', sha256: sha256(v1) } } },
      shadow: {},
      refused: {},
    });
    const e2 = server.add('legacy-v2.onnx', v2, 'v2');
    const { agent, updater } = await start(dir);
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'active', error: null, activeVersion: 'v2' });
    await desire(updater, { default: e2 });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'active', activeVersion: 'v2' });
    expect(requestsFor(e2)).toBe(0);
    // The live model's file was renamed on its read; the rollback target keeps its old name until it is read.
    expect(files(dir)).toEqual(['v1.onnx', named('v2', v2)].sort());

    await agent.pipeline.ingest(readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }), 'test');
    await agent.models.idle();
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'rolled-back', activeVersion: 'v1' });
    expect(await scoredBy(agent, readings('p1', 2))).toEqual([['v1', true], ['v1', true]]);
    expect(files(dir)).toEqual([named('v1', v1)]);
  });
});

describe('pruning the model store', () => {
  it('deletes at start-up only what a crash left unusable, and the rest at every reconcile, never the live model or its rollback target', async () => {
    const dir = gateway();
    const v1 = makeModel({ version: 'v1', seed: 34 });
    const v2 = makeModel({ version: 'v2', seed: 35 });
    const models = join(dir, 'data', 'models');
    // Old file names for the kept models: both the agent before this layout and this one read them.
    oldDataDir(dir, { 'v1.onnx': v1, 'v2.onnx': v2, 'v0.onnx': makeModel({ version: 'v0', seed: 36 }), 'v3.onnx.4027.1796496004855.partial': Buffer.alloc(1024, 7) }, {
      live: { default: { version: 'v2', sha256: sha256(v2), previous: { kind: 'store', version: 'v1', sha256: sha256(v1) } } },
      shadow: {},
      refused: {},
    });
    mkdirSync(join(models, 'pump-gone'));
    writeFileSync(join(models, 'pump-gone', 'pg-1.onnx'), makeModel({ version: 'pg-1', seed: 37 }));
    const e2 = server.add('prune-v2.onnx', v2, 'v2');

    const { agent, updater } = await start(dir);
    const kept = async (): Promise<string[]> => (await agent.modelStore.versions('default')).sort();
    // Start-up, before the twin is read: the temp file goes; a complete file may be what the desired entry names, and stays.
    expect(files(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(await kept()).toEqual(['v0', 'v1', 'v2']);
    expect(existsSync(join(models, 'pump-gone', 'pg-1.onnx'))).toBe(true);
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'active' });
    // The first reconcile knows the desired models: v0 and the folder of the pump no entry names go.
    await desire(updater, { default: e2 });
    expect(await kept()).toEqual(['v1', 'v2']);
    expect(existsSync(join(models, 'pump-gone'))).toBe(false);

    // The same files while it runs (another process's crash, a copy by hand): the next twin read, naming the running model, prunes them.
    writeFileSync(join(models, 'default', `${named('v3', v2)}.1.2.partial`), Buffer.alloc(10));
    writeFileSync(join(models, 'default', named('old', v1)), v1);
    await desire(updater, { default: e2 });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'active' });
    expect(await kept()).toEqual(['v1', 'v2']);
    expect(files(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(requestsFor(e2)).toBe(0);
  });

  it("leaves no folder behind for a pump whose entry was removed", async () => {
    const dir = gateway();
    const { agent, updater } = await start(dir);
    await agent.pipeline.ingest(readings('pump-x', 5), 'test');
    const entry = server.add('px-1.onnx', makeModel({ version: 'px-1', source: 'pump-x', seed: 38 }), 'px-1');
    await desire(updater, { 'pump-x': entry });
    expect(agent.models.status()['pump-x']).toMatchObject({ version: 'px-1', status: 'active' });
    expect(files(dir, 'pump-x')).toHaveLength(1);

    await desire(updater, {});
    expect(agent.models.status()['pump-x']).toBeUndefined();
    expect(existsSync(join(dir, 'data', 'models', 'pump-x'))).toBe(false);
  });

  it('deletes nothing while the persisted models are unknown (the buffer did not open), and a refusal meanwhile leaves the saved model running once it opens', async () => {
    const dir = gateway();
    // The last run left pump-k on pk-2 (pk-1 before it); the buffer that says so is out of reach.
    const pk1 = makeModel({ version: 'pk-1', source: 'pump-k', seed: 44 });
    const pk2 = makeModel({ version: 'pk-2', source: 'pump-k', seed: 42 });
    stored(dir, 'pump-k', 'pk-1', pk1);
    stored(dir, 'pump-k', 'pk-2', pk2);
    const backInReach = bufferOutOfReach(dir, {
      live: { 'pump-k': { version: 'pk-2', sha256: sha256(pk2), previous: { kind: 'store', version: 'pk-1', sha256: sha256(pk1) } } },
      shadow: {},
      refused: {},
    });
    let { agent, updater } = await start(dir);
    // The new entry's URL expired while the gateway was offline.
    const refused = { ...server.add('pk-3.onnx', makeModel({ version: 'pk-3', source: 'pump-k', seed: 43 }), 'pk-3'), url: `${server.baseUrl}/models/missing-pk-3.onnx` };
    await desire(updater, { 'pump-k': refused });
    expect(agent.models.status()['pump-k']).toMatchObject({ version: 'pk-3', status: 'rejected' });
    expect(files(dir, 'pump-k')).toEqual([named('pk-1', pk1), named('pk-2', pk2)].sort());

    backInReach();
    await agent.reopenBuffer();
    await updater.idle();
    // pk-2 scores again, the refusal of pk-3 shown beside it; pk-2 and its rollback target stay.
    expect(agent.models.status()['pump-k']).toMatchObject({ version: 'pk-3', status: 'rejected', activeVersion: 'pk-2' });
    expect(persisted(agent).live['pump-k']).toMatchObject({ version: 'pk-2', previous: { kind: 'store', version: 'pk-1' } });
    expect(files(dir, 'pump-k')).toEqual([named('pk-1', pk1), named('pk-2', pk2)].sort());
    expect(await scoredBy(agent, readings('pump-k', 2))).toEqual([['pk-2', true], ['pk-2', true]]);

    await stop(); // and a restart with the twin unchanged comes back on pk-2
    ({ agent, updater } = await start(dir));
    await desire(updater, { 'pump-k': refused });
    expect(agent.models.status()['pump-k']).toMatchObject({ version: 'pk-3', status: 'rejected', activeVersion: 'pk-2' });
    expect(files(dir, 'pump-k')).toEqual([named('pk-1', pk1), named('pk-2', pk2)].sort());
  });

  it('makes the saved live model the fallback of one the twin activated while the buffer was closed, and rolls back to it', async () => {
    const dir = gateway();
    const d1 = makeModel({ version: 'd-1', seed: 44 });
    const d2 = makeModel({ version: 'd-2', seed: 42 });
    stored(dir, 'default', 'd-1', d1);
    stored(dir, 'default', 'd-2', d2);
    const backInReach = bufferOutOfReach(dir, {
      live: { default: { version: 'd-2', sha256: sha256(d2), previous: { kind: 'store', version: 'd-1', sha256: sha256(d1) } } },
      shadow: {},
      refused: {},
    });
    const { agent, updater } = await start(dir);
    // d-3 is deployed while the buffer is out of reach: it goes live, its fallback unknown then.
    const d3 = server.add('late-d3.onnx', nanBelowModel('d-3'), 'd-3'); // NaN on readings near 0
    await desire(updater, { default: d3 });
    expect(agent.models.status()['default']).toMatchObject({ status: 'active', activeVersion: 'd-3' });

    backInReach();
    await agent.reopenBuffer();
    await updater.idle();
    expect(persisted(agent).live['default']).toMatchObject({ version: 'd-3', previous: { kind: 'store', version: 'd-2' } });
    expect(files(dir)).toContain(named('d-2', d2));
    // d-3 faults on live data: the gateway goes back to d-2, not to the start-up model.
    await agent.pipeline.ingest(readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }), 'test');
    await agent.models.idle();
    expect(agent.models.status()['default']).toMatchObject({ status: 'rolled-back', activeVersion: 'd-2' });
    expect(await scoredBy(agent, readings('p1', 2))).toEqual([['d-2', true], ['d-2', true]]);
  });

  it('removes the model of a pump whose entry the twin removed while the buffer was closed, once it opens', async () => {
    const dir = gateway();
    const pr1 = makeModel({ version: 'pr-1', source: 'pump-r', seed: 45 });
    stored(dir, 'pump-r', 'pr-1', pr1);
    const backInReach = bufferOutOfReach(dir, { live: { 'pump-r': { version: 'pr-1', sha256: sha256(pr1), previous: { kind: 'none' } } }, shadow: {}, refused: {} });
    const { agent, updater } = await start(dir);
    await desire(updater, {}); // the twin read: pump-r's entry is gone
    backInReach();
    await agent.reopenBuffer();
    await updater.idle();
    expect(agent.models.status()['pump-r']).toBeUndefined();
    expect(persisted(agent).live['pump-r']).toBeUndefined();
    expect(existsSync(join(dir, 'data', 'models', 'pump-r'))).toBe(false);
    expect(await scoredBy(agent, readings('pump-r', 1))).toEqual([['bundled-1', true]]);
  });

  it('takes a model stored but not switched in when the agent stopped from the store at the next start', async () => {
    const dir = gateway();
    // Killed after the download was stored, before the switch: v3 of default, and the first model of a new pump.
    const v1 = makeModel({ version: 'v1', seed: 46 });
    const v3 = makeModel({ version: 'v3', seed: 47 });
    const pn1 = makeModel({ version: 'pn-1', source: 'pump-n', seed: 48 });
    oldDataDir(dir, {}, { live: { default: { version: 'v1', sha256: sha256(v1), previous: { kind: 'bundled' } } }, shadow: {}, refused: {} });
    stored(dir, 'default', 'v1', v1);
    stored(dir, 'default', 'v3', v3);
    stored(dir, 'pump-n', 'pn-1', pn1);
    const e3 = server.add('stored-v3.onnx', v3, 'v3');
    const en = server.add('stored-pn-1.onnx', pn1, 'pn-1');
    const { agent, updater } = await start(dir);
    await agent.pipeline.ingest([...readings('p1', 5), ...readings('pump-n', 5)], 'test');
    await desire(updater, { default: e3, 'pump-n': en });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v3', status: 'active' });
    expect(agent.models.status()['pump-n']).toMatchObject({ version: 'pn-1', status: 'active' });
    expect(requestsFor(e3)).toBe(0);
    expect(requestsFor(en)).toBe(0);
    expect(files(dir)).toEqual([named('v1', v1), named('v3', v3)].sort());
  });

  it('keeps such a model through a rollback before the twin is read', async () => {
    const dir = gateway();
    const v1 = makeModel({ version: 'v1', seed: 49 });
    const v2 = nanBelowModel('v2');
    const v3 = makeModel({ version: 'v3', seed: 50 });
    oldDataDir(dir, {}, { live: { default: { version: 'v2', sha256: sha256(v2), previous: { kind: 'store', version: 'v1', sha256: sha256(v1) } } }, shadow: {}, refused: {} });
    for (const [version, bytes] of [['v1', v1], ['v2', v2], ['v3', v3]] as const) stored(dir, 'default', version, bytes);
    const e3 = server.add('kept-v3.onnx', v3, 'v3');
    const { agent, updater } = await start(dir);
    // v2 faults on live data before the first twin read: the rollback prunes, but cannot know v3 is wanted.
    await agent.pipeline.ingest(readings('p1', 2, { Pressure: 0, Flow: 0, Current: 0 }), 'test');
    await agent.models.idle();
    expect(agent.models.status()['default']).toMatchObject({ version: 'v2', status: 'rolled-back', activeVersion: 'v1' });
    expect(files(dir)).toContain(named('v3', v3));
    await agent.pipeline.ingest(readings('p1', 5), 'test');
    await desire(updater, { default: e3 });
    expect(agent.models.status()['default']).toMatchObject({ version: 'v3', status: 'active' });
    expect(requestsFor(e3)).toBe(0);
    // Once the desired models are known, the rolled-back v2 goes; v1 stays as v3's fallback.
    expect(files(dir)).toEqual([named('v1', v1), named('v3', v3)].sort());
  });

  it('never deletes the file of a model an install holds', async () => {
    const dir = gateway();
    const store = new ModelStore(join(dir, 'data', 'models'));
    const bytes = makeModel({ version: 'h1', seed: 39 });
    const ref = { version: 'h1', sha256: sha256(bytes) };
    const release = store.hold('pump-h', ref);
    await store.write('pump-h', ref, bytes);
    await store.prune('pump-h', []);
    expect(files(dir, 'pump-h')).toEqual([named('h1', bytes)]);
    release();
    await store.prune('pump-h', []);
    expect(existsSync(join(dir, 'data', 'models', 'pump-h'))).toBe(false);
  });
});

describe("the model updater's log lines", () => {
  it('name their component once', async () => {
    const dir = gateway();
    const raw: string[] = [];
    const { agent, updater } = await start(dir, raw);
    await agent.pipeline.ingest(readings('p1', 5), 'test');
    await desire(updater, { default: server.add('log-1.onnx', makeModel({ version: 'log-1', seed: 40 }), 'log-1') });
    await desire(updater, { default: server.add('log-2.onnx', makeModel({ version: 'log-2', seed: 41 }), 'log-2', { kind: 'status', status: 503 }) });

    const lines = raw.filter((l) => l.includes('"model-updater"'));
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(expect.arrayContaining(['model activated', 'model download attempt failed', 'model download failed; will retry']));
    for (const line of lines) expect(line.match(/"component":/g), line).toHaveLength(1);
  });
});
