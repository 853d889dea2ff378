/**
 * The registry repairs, second round, against a real Azurite (and the local hub for deploy),
 * through the CLI entry point: a sensor the live model left out with --exclude is not NEW for
 * train --if-drifted; a lost best.json of a source promoted once is refused; the repair names the
 * version that was live (not one rolled back from) and keeps the rollbacks; a rollback past two
 * bests records both; a model.onnx download cut mid-body is a storage failure, resumed; a damaged
 * model.json names what to delete.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import { checkModelBlob } from '../../trainer/registry/model-blob.js';
import { EXIT } from '../../trainer/errors.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { commitRollback, planRollback } from '../../trainer/registry/rollback.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { hubRegistry, lastLine, runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const ago = (ms: number) => new Date(NOW.getTime() - ms);

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;

const context = (c: ContainerClient = container, now = NOW): CommandContext => trainerContext(c, { now, registry });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

const bestOf = async (source: string, c = container) => (await readBest(c, source))?.pointer;
const desiredModels = (device: string) => (hub.desired(device, 'pumpwatch') as { models?: Record<string, { version: string }> }).models ?? {};

/**
 * Promotes a model fitted on a sensor the readings do not have (Vibration): the live model then
 * cannot be scored on the held-out rows, and the next train promotes its challenger for sure.
 */
async function promoteUnscorable(c: ContainerClient, source: string, version: string, at = NOW): Promise<void> {
  await promoteFittedModel(c, source, version, 3, at, ['Pressure', 'Flow', 'Vibration']);
}

/**
 * A TCP proxy in front of Azurite that cuts the response to a GET of a model.onnx after
 * `cutAfter` bytes (status line and headers included), `times` times (Infinity: every time).
 */
async function cuttingProxy(cutAfter: number, times: number): Promise<{ container: (name: string) => ContainerClient; cuts: () => number; close: () => Promise<void> }> {
  let left = times;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(az.port, '127.0.0.1');
    sockets.add(client).add(up);
    let watching = false;
    let seen = 0;
    client.on('data', (d: Buffer) => {
      if (left > 0 && /^GET [^ ]*model\.onnx/.test(d.toString('latin1'))) {
        left--;
        watching = true;
        seen = 0;
      }
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      if (watching && seen + d.length > cutAfter) {
        cuts++;
        client.write(d.subarray(0, cutAfter - seen), () => {
          client.destroy();
          up.destroy();
        });
        watching = false;
        return;
      }
      if (watching) seen += d.length;
      client.write(d);
    });
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const service = BlobServiceClient.fromConnectionString(az.connectionString.replace(`:${az.port}/`, `:${port}/`));
  return {
    container: (name) => service.getContainerClient(name),
    cuts: () => cuts,
    // The client's keep-alive sockets would hold close() for seconds.
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('repairs2-it');
  await container.create();
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  addAgentModule(hub, 'gw-1', 'pumpwatch');
});

afterAll(async () => {
  await hub?.stop();
  await az?.dispose();
});

describe('train --if-drifted', () => {
  it('does not count a sensor the live model left out with --exclude as NEW (train and train-all), as drift does not', async () => {
    const c = az.container('repairs2-exclude');
    await c.create();
    await seedDays(c, 'pump-ex', T0, 1, 30, { vibration: true });
    await seedDays(c, 'pump-ex', T0 + 2 * DAY, 8641, 30, { vibration: true });
    const first = await cli(['train', '--source', 'pump-ex', '--from', '2026-01-01', '--to', '2026-01-03', '--exclude', 'Vibration'], context(c));
    expect(first.code, first.err).toBe(0);
    const live = (await bestOf('pump-ex', c))!.version;
    expect((await readModelRecord(c, 'pump-ex', live)).features).not.toContain('Vibration');
    const range = ['--from', '2026-01-03', '--to', '2026-01-05'];
    const drift = await cli(['drift', '--source', 'pump-ex', ...range], context(c));
    expect(drift.code, drift.out).toBe(0);
    expect(drift.out).not.toMatch(/NEW/);
    // The nightly job has no --exclude (train-all cannot carry one per source).
    const nightly = await cli(['train', '--source', 'pump-ex', ...range, '--if-drifted'], context(c));
    expect(nightly.code, nightly.err).toBe(0);
    expect(nightly.out).toMatch(new RegExp(`^pump-ex: skipped: no drift from the baseline of live model ${live}: not retrained`, 'm'));
    const all = await cli(['train-all', '--shard', '0/1', ...range, '--if-drifted'], context(c));
    expect(all.code, all.err).toBe(0);
    expect(all.out).toMatch(new RegExp(`^pump-ex: skipped: no drift from the baseline of live model ${live}`, 'm'));
    expect((await bestOf('pump-ex', c))!.version).toBe(live);
  });
});

describe('best.json missing', () => {
  it('is refused on a source promoted only once (no model.json names a live model), once that promotion cannot be in flight', async () => {
    await seedDays(container, 'pump-one', T0, 1, 30);
    await seedDays(container, 'pump-one', T0 + 2 * DAY, 8641, 31);
    // An hour ago: the source's one promotion.
    const first = await cli(['train', '--source', 'pump-one', '--from', '2026-01-01', '--to', '2026-01-05'], context(container, ago(HOUR)));
    expect(first.code, first.err).toBe(0);
    const live = (await bestOf('pump-one'))!.version;
    await container.getBlockBlobClient('models/pump-one/best.json').delete();
    const older = await cli(['train', '--source', 'pump-one', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(older.code, older.out).toBe(1);
    // Only a promotion shows it: best.json may never have been written (a run stopped before it), so "restore" is not the advice.
    expect(lastLine(older.err)).toBe(
      `pumpwatch-trainer train: PW_TRAINER_REGISTRY_INVALID: models/pump-one/best.json is missing but 1 version(s) of "pump-one" are registered (${live}): nothing is compared or promoted without it. ` +
        `No model.json shows that best.json was ever written (none names a live model it was compared with, none records a rollback): ${live} was promoted by train at ${ago(HOUR).toISOString()}, and that run may have stopped before writing best.json. ` +
        `To finish it, a train of the range that made it with the options of that run (pumpwatch-trainer train --source pump-one --from 2026-01-01T00:00:00.000Z --to 2026-01-05T00:00:00.000Z: the same data and options give the same version) writes best.json for it, as that run would have; ` +
        `or make ${live} best with: pumpwatch-trainer rollback --source pump-one --version ${live} --no-deploy (it checks that version's model.onnx and writes best.json)`,
    );
    for (const args of [
      ['drift', '--source', 'pump-one', '--from', '2026-01-01', '--to', '2026-01-03'],
      ['rollback', '--source', 'pump-one', '--no-deploy'],
    ]) {
      const res = await cli(args);
      expect(res.code, args[0]).toBe(1);
      expect(lastLine(res.err), args[0]).toContain('PW_TRAINER_REGISTRY_INVALID: models/pump-one/best.json is missing');
    }
    expect(await bestOf('pump-one')).toBeUndefined();
    // A first promotion still in flight (its model.json written a moment ago, best.json not yet): a run starting now goes on as a first one.
    await seedDays(container, 'pump-fly', T0, 1, 30);
    await promoteUnscorable(container, 'pump-fly', 'f1', ago(60_000));
    await container.getBlockBlobClient('models/pump-fly/best.json').delete();
    const meanwhile = await cli(['train', '--source', 'pump-fly', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(meanwhile.code, meanwhile.err).toBe(0);
    expect(meanwhile.out).toMatch(/^pump-fly: promoted /m);
  });

  it('finishes a first promotion a run left without best.json: the rerun of its range writes it, another range is refused with that rerun to do', async () => {
    const c = az.container('half-promoted');
    await c.create();
    await seedDays(c, 'pump-half', T0, 1, 30);
    const range = ['--from', '2026-01-01', '--to', '2026-01-03'];
    // Half an hour ago the source's first promotion; its pod was killed between model.json and best.json: the blobs as that leaves them.
    const killed = await cli(['train', '--source', 'pump-half', ...range], context(c, ago(HOUR / 2)));
    expect(killed.code, killed.err).toBe(0);
    const version = (/^pump-half: promoted (\S+)/m.exec(killed.out) ?? [])[1]!;
    await c.getBlockBlobClient('models/pump-half/best.json').delete();
    // Another range (the next night's): refused, naming the rerun that finishes it; nothing to restore, nothing registered.
    const next = await cli(['train-all', '--from', '2026-01-02', '--to', '2026-01-03'], context(c));
    expect(next.code, next.err).toBe(EXIT.dataFailed);
    const refusal = next.err.split('\n').find((l) => l.startsWith('pump-half: FAILED'));
    expect(refusal).toContain(`pump-half: FAILED PW_TRAINER_REGISTRY_INVALID: models/pump-half/best.json is missing but 1 version(s) of "pump-half" are registered (${version})`);
    expect(refusal).toContain(`${version} was promoted by train at ${ago(HOUR / 2).toISOString()}, and that run may have stopped before writing best.json`);
    expect(refusal).toContain('pumpwatch-trainer train --source pump-half --from 2026-01-01T00:00:00.000Z --to 2026-01-03T00:00:00.000Z');
    expect(refusal).not.toMatch(/[Rr]estore it|undelete/);
    const versions: string[] = [];
    for await (const b of c.listBlobsFlat({ prefix: 'models/pump-half/' })) versions.push(b.name);
    // The first run's own evaluation blob only (it ran to the end here; a killed one would not have written it): the refused run wrote none.
    expect(versions.sort()).toEqual([expect.stringMatching(new RegExp(`^models/pump-half/${version}/evaluations/${ago(HOUR / 2).toISOString().replaceAll(':', '-')}-[0-9a-f]{8}\\.json$`)), `models/pump-half/${version}/model.json`, `models/pump-half/${version}/model.onnx`]);
    // The killed run again (the Job's retry, the same range and options): it finishes the promotion.
    const retry = await cli(['train-all', ...range], context(c));
    expect(retry.code, retry.err).toBe(0);
    expect(retry.out).toMatch(new RegExp(`^pump-half: promoted ${version} `, 'm'));
    expect(retry.out).toContain(`this finishes the promotion of ${version} a run began at ${ago(HOUR / 2).toISOString()} (its model.json says promoted) and that did not write best.json`);
    expect(await bestOf('pump-half', c)).toMatchObject({ version, history: [] });
    // Its model.json is the one the first run wrote; the source is whole again: the next range is compared with it.
    expect(await readModelRecord(c, 'pump-half', version)).toMatchObject({ createdAt: ago(HOUR / 2).toISOString(), decision: { promoted: true } });
    const after = await cli(['train', '--source', 'pump-half', '--from', '2026-01-02', '--to', '2026-01-03'], context(c));
    expect(after.code, after.err).toBe(0);
    expect(after.out).toMatch(new RegExp(`compare  .*; live ${version}: `));
  });

  it('after a rollback: names the version rolled back to, not the one rolled back from, and the repair keeps the rollback', async () => {
    await seedDays(container, 'pump-sr', T0, 1, 30);
    await promoteUnscorable(container, 'pump-sr', 'x1', ago(3 * HOUR));
    const range = ['train', '--source', 'pump-sr', '--from', '2026-01-01', '--to', '2026-01-03'];
    const trained = await cli(range, context(container, ago(2 * HOUR)));
    expect(trained.code, trained.err).toBe(0);
    const v2 = (/^pump-sr: promoted (\S+)/m.exec(trained.out) ?? [])[1]!;
    const back = await cli(['rollback', '--source', 'pump-sr', '--no-deploy'], context(container, ago(HOUR)));
    expect(back.code, back.err).toBe(0);
    expect(back.err).toBe('');
    expect((await readModelRecord(container, 'pump-sr', v2)).rolledBack).toEqual({ at: ago(HOUR).toISOString(), to: 'x1' });
    await container.getBlockBlobClient('models/pump-sr/best.json').delete();
    const refused = await cli(range);
    expect(refused.code).toBe(1);
    expect(lastLine(refused.err)).toContain('or make the version that should be live best again with: pumpwatch-trainer rollback --source pump-sr --version x1 --no-deploy');
    expect(lastLine(refused.err)).toContain(`takes the versions rolled back from (${v2}) from their model.json`);
    expect(lastLine(refused.err)).not.toContain(`--version ${v2}`);
    const repair = await cli(['rollback', '--source', 'pump-sr', '--version', 'x1', '--no-deploy']);
    expect(repair.code, repair.err).toBe(0);
    expect(await bestOf('pump-sr')).toMatchObject({ version: 'x1', history: [], rolledBack: [{ version: v2, at: ago(HOUR).toISOString(), to: 'x1' }] });
    // The rerun of v2's range is kept: the rollback survived the loss of best.json.
    const rerun = await cli(range);
    expect(rerun.code, rerun.err).toBe(0);
    expect(rerun.out).toMatch(new RegExp(`^pump-sr: kept live x1; challenger ${v2} `, 'm'));
    expect(rerun.out).toContain(`${v2} was rolled back from at ${ago(HOUR).toISOString()} (best.json went to x1)`);
    expect((await bestOf('pump-sr'))!.version).toBe('x1');
  });
});

describe('rollback --version back past two bests', () => {
  it('records every best it moves back past, in best.json and in their model.json', async () => {
    for (const [v, s] of [['v1', 1], ['v2', 2], ['v3', 3]] as const) await promoteFittedModel(container, 'pump-rk', v, s, NOW);
    const plan = await planRollback(container, 'pump-rk', NOW, false, 'v1');
    expect(plan.to.rolledBack).toEqual([
      { version: 'v3', at: NOW.toISOString(), to: 'v1' },
      { version: 'v2', at: NOW.toISOString(), to: 'v1' },
    ]);
    const moved = await commitRollback(container, plan);
    expect(moved.unmarked).toEqual([]);
    expect(await bestOf('pump-rk')).toMatchObject({ version: 'v1', history: [], rolledBack: [{ version: 'v3' }, { version: 'v2' }] });
    for (const v of ['v2', 'v3']) expect((await readModelRecord(container, 'pump-rk', v)).rolledBack, v).toEqual({ at: NOW.toISOString(), to: 'v1' });
    expect((await readModelRecord(container, 'pump-rk', 'v1')).restoredAt).toBe(NOW.toISOString());
    // Made best on purpose again: off both lists.
    const asked = await cli(['rollback', '--source', 'pump-rk', '--version', 'v2', '--no-deploy']);
    expect(asked.code, asked.err).toBe(0);
    expect((await bestOf('pump-rk'))!.rolledBack).toEqual([{ version: 'v3', at: NOW.toISOString(), to: 'v1' }]);
    const v2 = await readModelRecord(container, 'pump-rk', 'v2');
    expect(v2.rolledBack).toBeUndefined();
    expect(v2.restoredAt).toBe(NOW.toISOString());
  });
});

describe('a model.onnx download cut mid-transfer', () => {
  it('is resumed by deploy when cut once, and is PW_TRAINER_STORAGE (not REGISTRY_INVALID) when cut every time, with no twin written', async () => {
    const record = await promoteFittedModel(container, 'pump-cut', 'c1', 1, NOW);
    expect(record.model.size).toBeGreaterThan(1500);
    const once = await cuttingProxy(1200, 1);
    try {
      await checkModelBlob(once.container('repairs2-it'), record);
      expect(once.cuts()).toBe(1);
    } finally {
      await once.close();
    }
    const always = await cuttingProxy(1200, Infinity);
    try {
      const res = await cli(['deploy', '--source', 'pump-cut', '--device', 'gw-1'], context(always.container('repairs2-it')));
      expect(res.code).toBe(1);
      expect(always.cuts()).toBeGreaterThan(1);
      expect(lastLine(res.err)).toMatch(/^pumpwatch-trainer deploy: PW_TRAINER_STORAGE: reading models\/pump-cut\/c1\/model\.onnx failed: /);
      expect(desiredModels('gw-1')['pump-cut']).toBeUndefined();
    } finally {
      await always.close();
    }
    const cutOnce = await cuttingProxy(1200, 1);
    try {
      const res = await cli(['deploy', '--source', 'pump-cut', '--device', 'gw-1'], context(cutOnce.container('repairs2-it')));
      expect(res.code, res.err).toBe(0);
      expect(cutOnce.cuts()).toBe(1);
      expect(desiredModels('gw-1')['pump-cut']!.version).toBe('c1');
    } finally {
      await cutOnce.close();
    }
  });
});

describe('a damaged model.json of a registered version', () => {
  it('makes a rerun of its range (train-all) name the folder to delete and what best.json names; a damaged live one names the rollback', async () => {
    const c = az.container('repairs2-json');
    await c.create();
    await seedDays(c, 'pump-dj', T0, 1, 30);
    const args = ['train-all', '--shard', '0/1', '--from', '2026-01-01', '--to', '2026-01-03'];
    const first = await cli(args, context(c));
    expect(first.code, first.err).toBe(0);
    const version = (/^pump-dj: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
    const json = `models/pump-dj/${version}/model.json`;
    const original = await c.getBlockBlobClient(json).downloadToBuffer();
    // The live one damaged: every run stops at it; the way out is a rollback (here there is no earlier best: restore it).
    await c.getBlockBlobClient(json).upload('{"schema":1,', 12);
    const live = await cli(args, context(c));
    expect(live.code).toBe(EXIT.dataFailed); // a registry document to repair: a retry fails on it again
    expect(`${live.out}\n${live.err}`.split('\n').find((l) => l.startsWith('pump-dj: FAILED'))).toBe(
      `pump-dj: FAILED PW_TRAINER_REGISTRY_INVALID: ${json} is not JSON; best.json names ${version}: restore that model.json, or roll back away from it (pumpwatch-trainer rollback --source pump-dj, which does not need it), then delete models/pump-dj/${version}/ to retrain that version`,
    );
    // Not live any more (another model promoted), model.onnx intact: the rerun names the folder, and that best.json names another version.
    await c.getBlockBlobClient(json).upload(original, original.length);
    await promoteUnscorable(c, 'pump-dj', 'x1');
    await c.getBlockBlobClient(json).upload('{"schema":1,', 12);
    const expected =
      `pump-dj: FAILED PW_TRAINER_REGISTRY_INVALID: ${json} is not JSON: version ${version} of "pump-dj" cannot be registered again over it; ` +
      `delete models/pump-dj/${version}/ (model.onnx and model.json) to retrain that version (best.json names x1, not this version)`;
    const rerun = await cli(args, context(c));
    expect(rerun.code).toBe(EXIT.dataFailed);
    expect(`${rerun.out}\n${rerun.err}`.split('\n').find((l) => l.startsWith('pump-dj: FAILED'))).toBe(expected);
    // model.onnx damaged as well: the same way out.
    const onnx = `models/pump-dj/${version}/model.onnx`;
    const bytes = await c.getBlockBlobClient(onnx).downloadToBuffer();
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0xff;
    await c.getBlockBlobClient(onnx).upload(bytes, bytes.length);
    const both = await cli(args, context(c));
    expect(both.code).toBe(EXIT.dataFailed);
    expect(`${both.out}\n${both.err}`.split('\n').find((l) => l.startsWith('pump-dj: FAILED'))).toBe(expected);
    // Following it: the folder deleted, the rerun registers the version again.
    for (const name of [json, onnx]) await c.getBlockBlobClient(name).delete();
    const after = await cli(args, context(c));
    expect(after.code, after.err).toBe(0);
    expect(after.out).toMatch(new RegExp(`^pump-dj: (promoted|kept) ${version} `, 'm'));
  });
});
