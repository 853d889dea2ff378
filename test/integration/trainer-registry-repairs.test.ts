/**
 * The registry when it is damaged or raced, against a real Azurite (and the local hub for
 * deploy), through the CLI entry point: a model.onnx of other bytes of the same size, two
 * rollbacks at once, a train losing to a rollback, best.json deleted, a sensor added since the
 * live model, a damaged model.onnx of a version retrained by train-all, and a rolled-back
 * version trained again.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { sha256 } from '../../trainer/registry/model-blob.js';
import { EXIT } from '../../trainer/errors.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { commitRollback, planRollback } from '../../trainer/registry/rollback.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { challengerVersion, hubRegistry, lastLine, runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;

const context = (c: ContainerClient = container): CommandContext => trainerContext(c, { now: NOW, registry });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

const desiredModels = (device: string) => (hub.desired(device, 'pumpwatch') as { models?: Record<string, { version: string }> }).models ?? {};
const bestOf = async (source: string, c = container) => (await readBest(c, source))?.pointer;

/**
 * Promotes a model fitted on a sensor the readings do not have (Vibration): the live model then
 * cannot be scored on the held-out rows, and the next train promotes its challenger for sure.
 */
async function promoteUnscorable(c: ContainerClient, source: string, version: string): Promise<void> {
  await promoteFittedModel(c, source, version, 3, NOW, ['Pressure', 'Flow', 'Vibration']);
}

/** The bytes of a blob with one byte in the middle changed: the same size, another sha256. */
async function flipByte(c: ContainerClient, name: string): Promise<string> {
  const bytes = await c.getBlockBlobClient(name).downloadToBuffer();
  const at = bytes.length >> 1;
  bytes[at] = bytes[at]! ^ 0xff;
  await c.getBlockBlobClient(name).upload(bytes, bytes.length);
  return sha256(bytes);
}

/** The container, with another run let in (`meanwhile`) just before the first write of a best.json. */
function racingContainer(c: ContainerClient, meanwhile: () => Promise<void>): ContainerClient {
  let raced = false;
  return new Proxy(c, {
    get(t, prop) {
      if (prop !== 'getBlockBlobClient') {
        const v = Reflect.get(t, prop) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      }
      return (name: string) => {
        const blob = t.getBlockBlobClient(name);
        if (!name.endsWith('best.json')) return blob;
        return new Proxy(blob, {
          get(b, p) {
            const v = Reflect.get(b, p) as unknown;
            if (p !== 'upload') return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(b) : v;
            return async (...a: Parameters<typeof blob.upload>) => {
              if (!raced) {
                raced = true;
                await meanwhile();
              }
              return blob.upload(...a);
            };
          },
        });
      };
    },
  });
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('repairs-it');
  await container.create();
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  addAgentModule(hub, 'gw-1', 'pumpwatch');
});

afterAll(async () => {
  await hub?.stop();
  await az?.dispose();
});

describe('deploy', () => {
  it('refuses a best version whose model.onnx has the recorded size but other bytes, naming the blob and both sha256, and writes no twin', async () => {
    await promoteFittedModel(container, 'pump-sw', 'v1', 1, NOW);
    const v2 = await promoteFittedModel(container, 'pump-sw', 'v2', 2, NOW);
    const actual = await flipByte(container, v2.model.blob);
    const res = await cli(['deploy', '--source', 'pump-sw', '--device', 'gw-1']);
    expect(res.code).toBe(1);
    expect(res.err).toBe(
      `pumpwatch-trainer deploy: PW_TRAINER_REGISTRY_INVALID: models/pump-sw/v2/model.onnx does not match the sha256 of its model.json: its bytes hash to ${actual}, model.json records ${v2.model.sha256}`,
    );
    expect(desiredModels('gw-1')['pump-sw']).toBeUndefined();
    // --version too, and another version's file copied over it (the same size: one algorithm, one feature count).
    const v1 = await readModelRecord(container, 'pump-sw', 'v1');
    if (v1.model.size === v2.model.size) {
      const bytes = await container.getBlockBlobClient(v1.model.blob).downloadToBuffer();
      await container.getBlockBlobClient(v2.model.blob).upload(bytes, bytes.length);
      const copied = await cli(['deploy', '--source', 'pump-sw', '--version', 'v2', '--device', 'gw-1']);
      expect(copied.code).toBe(1);
      expect(copied.err).toContain(`models/pump-sw/v2/model.onnx does not match the sha256 of its model.json: its bytes hash to ${v1.model.sha256}`);
    }
    expect(desiredModels('gw-1')['pump-sw']).toBeUndefined();
    // The intact version deploys.
    const ok = await cli(['deploy', '--source', 'pump-sw', '--version', 'v1', '--device', 'gw-1']);
    expect(ok.code, ok.err).toBe(0);
    expect(desiredModels('gw-1')['pump-sw']!.version).toBe('v1');
  });
});

describe('rollback racing', () => {
  it('the rollback that loses to another rollback says what best.json names now, and not to run again', async () => {
    for (const [v, s] of [['v1', 1], ['v2', 2], ['v3', 3]] as const) await promoteFittedModel(container, 'pump-rr', v, s, NOW);
    const first = await planRollback(container, 'pump-rr', NOW);
    const second = await planRollback(container, 'pump-rr', NOW);
    await commitRollback(container, first);
    const lost = await commitRollback(container, second).then(
      () => null,
      (err: unknown) => err as { code: string; message: string },
    );
    expect(lost?.code).toBe('PW_TRAINER_REGISTRY_CONFLICT');
    expect(lost?.message).toBe(
      `models/pump-rr/best.json changed while this rollback was being prepared: a rollback moved it from v3 to v2 (${NOW.toISOString()}); it now names v2; nothing was rolled back by this run (it was to move v3 → v2). ` +
        'Read models/pump-rr/best.json before rolling back again: another rollback would move it one more version back',
    );
    expect(lost?.message).not.toMatch(/run again|promoted/);
    expect((await bestOf('pump-rr'))!.version).toBe('v2');
  });

  it('a train that loses to a rollback names the rollback, not a promotion', async () => {
    await seedDays(container, 'pump-tr', T0, 1, 30);
    await promoteUnscorable(container, 'pump-tr', 'x1');
    await promoteUnscorable(container, 'pump-tr', 'x2');
    const loser = await cli(
      ['train', '--source', 'pump-tr', '--from', '2026-01-01', '--to', '2026-01-03'],
      context(
        racingContainer(container, async () => {
          const rb = await cli(['rollback', '--source', 'pump-tr', '--no-deploy']);
          expect(rb.code, rb.err).toBe(0);
        }),
      ),
    );
    expect(loser.code).toBe(1);
    expect(lastLine(loser.err)).toMatch(/^pumpwatch-trainer train: PW_TRAINER_REGISTRY_CONFLICT: models\/pump-tr\/best\.json changed while this run was deciding: a rollback moved it from x2 to x1 first; \S+ is registered/);
    expect(loser.err).not.toMatch(/another run promoted/);
    expect((await bestOf('pump-tr'))!.version).toBe('x1');
  });
});

describe('best.json missing while versions are registered', () => {
  it('train, drift and deploy refuse, naming best.json, the versions and the repair; rollback --version writes it back', async () => {
    await seedDays(container, 'pump-nb', T0, 1, 30);
    await seedDays(container, 'pump-nb', T0 + 2 * DAY, 8641, 45);
    const full = await cli(['train', '--source', 'pump-nb', '--from', '2026-01-01', '--to', '2026-01-05']);
    expect(full.code, full.err).toBe(0);
    const live = (await bestOf('pump-nb'))!;
    // An older range is compared with the live model and kept: its model.json names the live one.
    const kept = await cli(['train', '--source', 'pump-nb', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(kept.code, kept.err).toBe(0);
    const older = (/^pump-nb: kept live \S+; challenger (\S+)/m.exec(kept.out) ?? [])[1]!;
    await container.getBlockBlobClient('models/pump-nb/best.json').delete();
    const expected =
      `PW_TRAINER_REGISTRY_INVALID: models/pump-nb/best.json is missing but 2 version(s) of "pump-nb" are registered (${[older, live.version].sort().join(', ')}): nothing is compared or promoted without it. ` +
      `Restore it (undelete it, or copy it back), or make the version that should be live best again with: pumpwatch-trainer rollback --source pump-nb --version ${live.version} --no-deploy`;
    for (const args of [
      ['train', '--source', 'pump-nb', '--from', '2026-01-01', '--to', '2026-01-03'],
      ['drift', '--source', 'pump-nb', '--from', '2026-01-01', '--to', '2026-01-03'],
      ['deploy', '--source', 'pump-nb', '--device', 'gw-1'],
      ['rollback', '--source', 'pump-nb', '--no-deploy'],
    ]) {
      const res = await cli(args);
      expect(res.code, args[0]).toBe(1);
      expect(lastLine(res.err), args[0]).toContain(`pumpwatch-trainer ${args[0]}: ${expected}`);
    }
    expect(await bestOf('pump-nb')).toBeUndefined();
    // The repair: the printed command writes best.json (If-None-Match), then the older range is kept as before.
    const repair = await cli(['rollback', '--source', 'pump-nb', '--version', live.version, '--no-deploy']);
    expect(repair.code, repair.err).toBe(0);
    expect(repair.out).toBe(`pump-nb: best.json (missing) → ${live.version} (rollback)`);
    expect(await bestOf('pump-nb')).toMatchObject({ version: live.version, sha256: live.sha256, history: [] });
    const again = await cli(['train', '--source', 'pump-nb', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(new RegExp(`^pump-nb: kept live ${live.version}; challenger ${older} `));
    expect(again.out).toMatch(/decision older data/);
  });
});

describe('drift', () => {
  it('reports a sensor added since the live model as NEW and as drift, so train --if-drifted retrains to use it', async () => {
    await seedDays(container, 'pump-fa', T0, 1, 30);
    await seedDays(container, 'pump-fa', T0 + 2 * DAY, 8641, 30, { vibration: true });
    const first = await cli(['train', '--source', 'pump-fa', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(first.code, first.err).toBe(0);
    const live = (await bestOf('pump-fa'))!.version;
    const range = ['--source', 'pump-fa', '--from', '2026-01-03', '--to', '2026-01-05'];
    const drift = await cli(['drift', ...range]);
    expect(drift.code, drift.err).toBe(3);
    expect(drift.out).toMatch(/^ {2}Vibration\s+-\s+-\s+NEW \(in the data, not in the model: a retrain would use it\)$/m);
    expect(drift.out).toMatch(/^ {2}drift: (.*, )?Vibration \(new\)$/m);
    const nightly = await cli(['train', ...range, '--if-drifted']);
    expect(nightly.code, nightly.err).toBe(0);
    expect(nightly.out).not.toMatch(/skipped/);
    expect(nightly.out).toMatch(/^pump-fa: (promoted|kept) /);
    const challenger = challengerVersion(nightly.out, 'pump-fa');
    expect(challenger).not.toBe(live);
    expect((await readModelRecord(container, 'pump-fa', challenger)).features).toContain('Vibration');
  });
});

describe('a damaged model.onnx of a registered version', () => {
  it('is replaced by a rerun of its range in train-all when the rerun made the bytes its model.json records', async () => {
    const c = az.container('repairs-damaged');
    await c.create();
    await seedDays(c, 'pump-dm', T0, 1, 30);
    const first = await cli(['train-all', '--shard', '0/1', '--from', '2026-01-01', '--to', '2026-01-03'], context(c));
    expect(first.code, first.err).toBe(0);
    const version = (/^pump-dm: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
    const record = await readModelRecord(c, 'pump-dm', version);
    // Another model is best now (a rollback target or a newer one); this version's model.onnx is damaged.
    await promoteUnscorable(c, 'pump-dm', 'x1');
    await flipByte(c, record.model.blob);
    const rerun = await cli(['train-all', '--shard', '0/1', '--from', '2026-01-01', '--to', '2026-01-03'], context(c));
    expect(rerun.code, `${rerun.out}\n${rerun.err}`).toBe(0);
    expect(rerun.out).toMatch(new RegExp(`^pump-dm: promoted ${version} `, 'm'));
    expect(sha256(await c.getBlockBlobClient(record.model.blob).downloadToBuffer())).toBe(record.model.sha256);
    expect((await bestOf('pump-dm', c))!.version).toBe(version);
  });

  it('is named, with how to clear it and no --version advice, when the rerun cannot repair it', async () => {
    const c = az.container('repairs-damaged2');
    await c.create();
    await seedDays(c, 'pump-dm2', T0, 1, 30);
    const args = ['train-all', '--shard', '0/1', '--from', '2026-01-01', '--to', '2026-01-03'];
    const first = await cli(args, context(c));
    expect(first.code, first.err).toBe(0);
    const version = (/^pump-dm2: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
    await promoteUnscorable(c, 'pump-dm2', 'x1');
    // model.onnx and model.json both altered (a hand edit, a half copy): the record names neither the stored bytes nor the rerun's.
    const json = `models/pump-dm2/${version}/model.json`;
    const doc = JSON.parse((await c.getBlockBlobClient(json).downloadToBuffer()).toString()) as ModelRecord;
    const stored = await flipByte(c, doc.model.blob);
    const edited = JSON.stringify({ ...doc, model: { ...doc.model, sha256: 'a'.repeat(64) } });
    await c.getBlockBlobClient(json).upload(edited, edited.length);
    const rerun = await cli(args, context(c));
    expect(rerun.code).toBe(EXIT.dataFailed); // a registry to repair by hand: a retry fails on it again
    const line = `${rerun.out}\n${rerun.err}`.split('\n').find((l) => l.startsWith('pump-dm2: FAILED'));
    expect(line).toBe(
      `pump-dm2: FAILED PW_TRAINER_REGISTRY_INVALID: models/pump-dm2/${version}/model.onnx is damaged: its bytes hash to ${stored}, not to the sha256 ${json} records (${'a'.repeat(64)}), ` +
        `and this run's model hashes to ${doc.model.sha256}, not that one either: delete models/pump-dm2/${version}/ (model.onnx and model.json) to retrain that version (roll back first if best.json names it)`,
    );
    expect(line).not.toMatch(/--version/);
  });
});

describe('a version rolled back from', () => {
  it('is not promoted again by a rerun of its range, unless rollback --version makes it best', async () => {
    await seedDays(container, 'pump-rp', T0, 1, 30);
    await promoteUnscorable(container, 'pump-rp', 'x1');
    const range = ['train', '--source', 'pump-rp', '--from', '2026-01-01', '--to', '2026-01-03'];
    const first = await cli(range);
    expect(first.code, first.err).toBe(0);
    const version = (/^pump-rp: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
    const back = await cli(['rollback', '--source', 'pump-rp', '--no-deploy']);
    expect(back.code, back.err).toBe(0);
    expect((await bestOf('pump-rp'))!.version).toBe('x1');
    // The same range again: the same version, which would be promoted (x1 cannot be scored); it is kept, and the reason says why.
    const rerun = await cli(range);
    expect(rerun.code, rerun.err).toBe(0);
    expect(rerun.out).toMatch(new RegExp(`^pump-rp: kept live x1; challenger ${version} \\(.*\\) not promoted \\(rolled back from at ${NOW.toISOString().replaceAll('.', '\\.')}\\)$`, 'm'));
    expect(rerun.out).toContain(
      `  decision ${version} was rolled back from at ${NOW.toISOString()} (best.json went to x1), and a version rolled back from is not promoted again by train (to make it best on purpose: pumpwatch-trainer rollback --source pump-rp --version ${version}); without that: the live model cannot be scored`,
    );
    expect(await bestOf('pump-rp')).toMatchObject({ version: 'x1', rolledBack: [{ version, to: 'x1' }] });
    // Asked for explicitly: best again, off the list.
    const asked = await cli(['rollback', '--source', 'pump-rp', '--version', version, '--no-deploy']);
    expect(asked.code, asked.err).toBe(0);
    // Not an earlier best: made best as a promotion would, x1 not held back (not a rollback from x1).
    expect(asked.out).toBe(`pump-rp: best.json x1 → ${version} (made best by hand, as a promotion would: x1 is not rolled back from, and train may promote it again)`);
    const best = (await bestOf('pump-rp'))!;
    expect(best).toMatchObject({ version, history: [{ version: 'x1' }] });
    expect(best.rolledBack).toBeUndefined();
  });
});
