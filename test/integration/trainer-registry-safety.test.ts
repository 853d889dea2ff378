/**
 * The registry and deploy safety of the cloud trainer, against the real services (Azurite for
 * the registry and readings, the local hub through the real azure-iothub Registry): a rollback
 * or a --deploy that cannot reach a module, a model blob that is gone, an older range, a
 * concurrent promotion, hand-edited registry documents, invalid labels.
 */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelBlobName, toLabelRecord } from '../../sync/labels-upload.js';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { deployBest, deployPendingBest, prepareDeploy } from '../../trainer/commands/deploy.js';
import { readBestRecord } from '../../trainer/registry/best-record.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { setDeployPending } from '../../trainer/registry/write.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { startBlobProxy } from '../support/blob-proxy.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { rng } from '../support/models.js';
import { hubRegistry, lastLine, pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;

const context = (c: ContainerClient = container): CommandContext => trainerContext(c, { now: NOW, registry });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

const desiredModels = (device: string, module = 'pumpwatch') => (hub.desired(device, module) as { models?: Record<string, { version: string; url: string }> }).models ?? {};
const bestOf = async (source: string, c = container) => (await readBest(c, source))!.pointer;

/** Registers a model made by the trainer as `version` of `source` and promotes it. */
const promote = (source: string, version: string, seed: number): Promise<ModelRecord> => promoteFittedModel(container, source, version, seed, NOW);

/** Two days at flow 30 from Jan 1, two at flow 45 from Jan 3. */
async function seedTwoLevels(c: ContainerClient, pumpId: string, deviceId: string, seedNo: number): Promise<void> {
  const r = rng(seedNo);
  await seedReadings(c, pumpId, deviceId, T0, 8640, (i) => pumpValues(r, i, 30));
  await seedReadings(c, pumpId, deviceId, T0 + 2 * DAY, 8640, (i) => pumpValues(r, i, 45), { seq0: 8641 });
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('safety-it');
  await container.create();
  hub = await LocalHub.start();
  registry = hubRegistry(hub);
  for (const device of ['gw-1', 'gw-2']) addAgentModule(hub, device, 'pumpwatch');
  hub.addModule('gw-1', 'opcpublisher');
  await seedTwoLevels(container, 'pump-old', 'gw-5', 21);
  await seedTwoLevels(container, 'pump-race', 'gw-6', 22);
  await seedReadings(container, 'pump-dep', 'gw-7', T0, 8640, (i) => pumpValues(rng(23), i, 30));
  await seedReadings(container, 'pump-twin', 'gw-9', T0, 8640, (i) => pumpValues(rng(25), i, 30));
});

afterAll(async () => {
  await hub?.stop();
  await az?.dispose();
});

/** The container, with another run let in (`meanwhile`) just before (or after) the first write of a best.json. */
function racingContainer(meanwhile: () => Promise<void>, when: 'before' | 'after' = 'before'): ContainerClient {
  let raced = false;
  return overriding(container, {
    getBlockBlobClient: (name: string) => {
      const blob = container.getBlockBlobClient(name);
      if (!name.endsWith('best.json')) return blob;
      return overriding(blob, {
        upload: async (...a: Parameters<typeof blob.upload>) => {
          if (raced) return blob.upload(...a);
          raced = true;
          if (when === 'before') await meanwhile();
          const done = await blob.upload(...a);
          if (when === 'after') await meanwhile();
          return done;
        },
      });
    },
  });
}

/** `target` with some members replaced (the rest read from it, methods bound to it): a storage client that misbehaves on cue. */
function overriding<T extends object>(target: T, members: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'string' && Object.hasOwn(members, prop)) return members[prop];
      const v = Reflect.get(t, prop) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
    },
  });
}

describe('rollback checks what it needs before it moves best.json', () => {
  it('moves nothing when the deploy matches no module, so the retry rolls back once (v3 → v2, not v1)', async () => {
    for (const [v, s] of [['v1', 1], ['v2', 2], ['v3', 3]] as const) await promote('pump-rb', v, s);
    const typo = await cli(['rollback', '--source', 'pump-rb', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-typo'"]);
    expect(typo.code).toBe(1);
    expect(typo.out).toBe('');
    expect(typo.err).toBe('pumpwatch-trainer rollback: PW_TRAINER_DEPLOY: no module matched; v2 was not deployed; best.json was not moved (still v3)');
    expect((await bestOf('pump-rb')).version).toBe('v3');
    const retry = await cli(['rollback', '--source', 'pump-rb', '--device', 'gw-1']);
    expect(retry.code, retry.err).toBe(0);
    expect(retry.out).toMatch(/^pump-rb: best\.json v3 → v2 \(rollback\)\ndeploy models\/pump-rb\/v2\/model\.onnx → 1 module\(s\)/);
    expect((await bestOf('pump-rb')).version).toBe('v2');
    expect(desiredModels('gw-1')['pump-rb']!.version).toBe('v2');
  });

  it('moves nothing when the twin of --device cannot be read (a typo)', async () => {
    const res = await cli(['rollback', '--source', 'pump-rb', '--device', 'gw-404']);
    expect(res.code).toBe(1);
    expect(res.out).toBe('');
    expect(res.err).toMatch(/^pumpwatch-trainer rollback: PW_TRAINER_DEPLOY: cannot read the twin of gw-404\/pumpwatch: .*; best\.json was not moved \(still v2\)$/);
    expect((await bestOf('pump-rb')).version).toBe('v2');
  });

  it('when a twin update fails after the move, says what best.json names and prints the deploy command that pushes it', async () => {
    // pump-rb: best v2, history [v1]. The hub refuses the update of gw-2's twin (after the twin was read).
    const refusing: TwinRegistry = {
      getModuleTwin: (d, m) => registry.getModuleTwin(d, m),
      createQuery: (sql, size) => registry.createQuery(sql, size),
      updateModuleTwin: () => Promise.reject(Object.assign(new Error('the hub refused the update'), { name: 'ForbiddenError' })),
    };
    const res = await cli(['rollback', '--source', 'pump-rb', '--device', 'gw-2', '--expires-hours', '2'], { ...context(), registry: () => refusing });
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/^pump-rb: best\.json v2 → v1 \(rollback\)\n.*\n {2}FAILED gw-2\/pumpwatch: /);
    expect(lastLine(res.err)).toBe(
      'pump-rb: best.json now names v1, which was not deployed to every module; its deploy stays pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-rb --version v1 --device gw-2 --expires-hours 2',
    );
    expect(await bestOf('pump-rb')).toMatchObject({ version: 'v1', deployPending: true });
    expect(desiredModels('gw-2')['pump-rb']).toBeUndefined();
    // The printed command pushes it and clears the mark.
    const push = await cli(['deploy', '--source', 'pump-rb', '--version', 'v1', '--device', 'gw-2', '--expires-hours', '2']);
    expect(push.code, push.err).toBe(0);
    expect(push.out).toMatch(/\npump-rb: best\.json v1: deployed, no longer pending$/);
    expect(desiredModels('gw-2')['pump-rb']!.version).toBe('v1');
    expect(await bestOf('pump-rb')).not.toHaveProperty('deployPending');
  });

  it('refuses to roll back to a version whose model.onnx is gone or is not the recorded one, and deploy refuses to send gateways to it', async () => {
    await promote('pump-gone', 'v1', 4);
    const v2 = await promote('pump-gone', 'v2', 5);
    await container.getBlockBlobClient('models/pump-gone/v1/model.onnx').delete();
    const before = await bestOf('pump-gone');
    for (const args of [['--device', 'gw-1'], ['--no-deploy']]) {
      const res = await cli(['rollback', '--source', 'pump-gone', ...args]);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.err).toBe('pumpwatch-trainer rollback: PW_TRAINER_NO_MODEL: models/pump-gone/v1/model.onnx does not exist');
      expect(await bestOf('pump-gone')).toEqual(before);
    }
    const dep = await cli(['deploy', '--source', 'pump-gone', '--version', 'v1', '--device', 'gw-2']);
    expect(dep.code).toBe(1);
    expect(dep.err).toBe('pumpwatch-trainer deploy: PW_TRAINER_NO_MODEL: models/pump-gone/v1/model.onnx does not exist (its model.json does)');
    expect(desiredModels('gw-2')['pump-gone']).toBeUndefined();
    // Other bytes of the same size: rollback reads and hashes them.
    const other = Buffer.alloc(v2.model.size, 7);
    await container.getBlockBlobClient('models/pump-gone/v1/model.onnx').upload(other, other.length);
    const hashed = await cli(['rollback', '--source', 'pump-gone', '--no-deploy']);
    expect(hashed.code).toBe(1);
    expect(hashed.err).toMatch(/PW_TRAINER_REGISTRY_INVALID: models\/pump-gone\/v1\/model\.onnx (does not match the sha256|has \d+ bytes)/);
    // Another size: deploy checks it before writing twins.
    const short = Buffer.alloc(10, 1);
    await container.getBlockBlobClient('models/pump-gone/v2/model.onnx').upload(short, short.length);
    const sized = await cli(['deploy', '--source', 'pump-gone', '--device', 'gw-2']);
    expect(sized.code).toBe(1);
    expect(sized.err).toBe(`pumpwatch-trainer deploy: PW_TRAINER_REGISTRY_INVALID: models/pump-gone/v2/model.onnx has 10 bytes, its model.json says ${v2.model.size}`);
    expect(desiredModels('gw-2')['pump-gone']).toBeUndefined();
    expect(await bestOf('pump-gone')).toEqual(before);
  });
});

describe('deploy --query … --module M', () => {
  it('writes only the modules of that id among those the query finds, and counts the others', async () => {
    await promote('pump-q', 'v1', 6);
    const res = await cli(['deploy', '--source', 'pump-q', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-1'", '--module', 'pumpwatch']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^deploy models\/pump-q\/v1\/model\.onnx → 1 module\(s\); 1 module\(s\) the query found skipped: not module "pumpwatch" \(--module\)\n {2}ok {5}gw-1\/pumpwatch: desired models\.pump-q = v1\b[^\n]*$/);
    expect(desiredModels('gw-1')['pump-q']!.version).toBe('v1');
    expect(desiredModels('gw-1', 'opcpublisher')).toEqual({});
    const none = await cli(['deploy', '--source', 'pump-q', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-1'", '--module', 'nope']);
    expect(none.code).toBe(1);
    expect(none.err).toBe('pumpwatch-trainer deploy: PW_TRAINER_DEPLOY: no module matched; 2 module(s) the query found skipped: not module "nope" (--module); v1 was not deployed');
  });
});

describe('hand-edited best.json', () => {
  it('is refused with PW_TRAINER_REGISTRY_INVALID by train, deploy, drift and rollback: a bad version, another source, another sha256', async () => {
    const good = await promote('pump-edit', 'v1', 7);
    await promote('pump-edit', 'v2', 8);
    const name = 'models/pump-edit/best.json';
    const original = (await container.getBlockBlobClient(name).downloadToBuffer()).toString();
    const pointer = JSON.parse(original) as Record<string, unknown>;
    const put = async (doc: unknown) => {
      const text = JSON.stringify(doc);
      await container.getBlockBlobClient(name).upload(text, Buffer.byteLength(text));
    };
    const commands = [
      ['train', '--source', 'pump-edit', '--from', '2026-01-01', '--to', '2026-01-02'],
      ['deploy', '--source', 'pump-edit', '--device', 'gw-2'],
      ['drift', '--source', 'pump-edit', '--from', '2026-01-01', '--to', '2026-01-02'],
      ['rollback', '--source', 'pump-edit', '--no-deploy'],
    ];
    for (const [doc, message] of [
      [{ ...pointer, version: '..' }, /PW_TRAINER_REGISTRY_INVALID: models\/pump-edit\/best\.json is not a registry document of this trainer: version: not a model version/],
      [{ ...pointer, source: 'pump-zzz' }, /PW_TRAINER_REGISTRY_INVALID: models\/pump-edit\/best\.json names source "pump-zzz", not "pump-edit"/],
      [{ ...pointer, sha256: good.model.sha256 }, /PW_TRAINER_REGISTRY_INVALID: models\/pump-edit\/best\.json does not match .*model\.json/],
    ] as const) {
      await put(doc);
      for (const args of commands) {
        const res = await cli(args);
        expect(res.code, `${args[0]} ${JSON.stringify(doc)}`).toBe(1);
        expect(lastLine(res.err), args[0]).toMatch(message);
        expect(res.err).not.toMatch(/unexpected failure/);
      }
    }
    expect(desiredModels('gw-2')['pump-edit']).toBeUndefined();
    // A history entry equal to the current version is skipped: the rollback goes to v1.
    await put({ ...pointer, history: [{ version: 'v2', promotedAt: NOW.toISOString() }, ...(pointer.history as unknown[])] });
    const back = await cli(['rollback', '--source', 'pump-edit', '--no-deploy']);
    expect(back.code, back.err).toBe(0);
    expect(back.out).toBe('pump-edit: best.json v2 → v1 (rollback)');
    expect((await bestOf('pump-edit')).history).toEqual([]);
  });

  it('refuses a bad --version before any work (exit 2)', async () => {
    for (const command of [
      ['train', '--source', 'pump-dep', '--from', '2026-01-01', '--to', '2026-01-03'],
      ['deploy', '--source', 'pump-dep', '--device', 'gw-1'],
      ['evaluate', '--source', 'pump-dep', '--from', '2026-01-01', '--to', '2026-01-03'],
    ]) {
      for (const version of ['.', '..', 'a/b', 'x y']) {
        const res = await cli([...command, '--version', version]);
        expect(res.code, `${command[0]} ${version}`).toBe(2);
        expect(res.err).toBe(`pumpwatch-trainer ${command[0]}: --version "${version}" is not a model version (1-128 characters: letters, digits, . _ : - (starting with a letter or digit))`);
      }
    }
    const blobs: string[] = [];
    for await (const b of container.listBlobsFlat({ prefix: 'models/pump-dep/' })) blobs.push(b.name);
    expect(blobs).toEqual([]);
  });
});

describe('train', () => {
  it('does not let an older range replace a newer live model unless --allow-older, and still prints the comparison', async () => {
    const newer = await cli(['train', '--source', 'pump-old', '--from', '2026-01-03', '--to', '2026-01-05']);
    expect(newer.code, newer.err).toBe(0);
    const live = await bestOf('pump-old');
    const older = await cli(['train', '--source', 'pump-old', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(older.code, older.err).toBe(0);
    // "kept" names the live model; the challenger is named as not promoted, with the gist of why.
    expect(older.out).toMatch(new RegExp(`^pump-old: kept live ${live.version}; challenger \\S+ \\(mset-horizon, .*\\) not promoted \\(older data\\)$`, 'm'));
    expect(older.out).toMatch(new RegExp(`^ {2}compare {2}synthetic-faults: challenger balanced accuracy [\\d.]+ .*; live ${live.version}: balanced accuracy`, 'm'));
    expect(older.out).toMatch(
      new RegExp(
        `^ {2}decision older data: its newest reading \\(2026-01-02T23:\\S+\\) is older than the newest of live model ${live.version}'s data \\(2026-01-04T23:\\S+\\); older data never replaces a newer model \\(--allow-older to compare as usual\\); on the held-out rows: synthetic-faults: challenger balanced accuracy`,
        'm',
      ),
    );
    expect(await bestOf('pump-old')).toEqual(live);
    const challenger = (/^pump-old: kept live \S+; challenger (\S+)/m.exec(older.out) ?? [])[1]!;
    expect((await readModelRecord(container, 'pump-old', challenger)).decision).toMatchObject({ promoted: false, reason: expect.stringMatching(/^older data/) });
    const allowed = await cli(['train', '--source', 'pump-old', '--from', '2026-01-01', '--to', '2026-01-03', '--allow-older', '--seed', '2']);
    expect(allowed.code, allowed.err).toBe(0);
    expect(allowed.out).not.toMatch(/older data/);
    expect(allowed.out).toMatch(/decision (better on the held-out rows|not better by the margin|not better beyond the noise of the fault placements|the live model flags [\d.]+ % of the normal held-out rows, above the false-alarm ceiling)/);
  });

  it('judges by readings, not by the requested range: a live model trained with a --to in the future does not block the data after its own', async () => {
    const r = rng(24);
    await seedReadings(container, 'pump-future', 'gw-8', T0, 8640, (i) => pumpValues(r, i, 30)); // Jan 1-3 arrived
    const generous = await cli(['train', '--source', 'pump-future', '--from', '2026-01-01', '--to', '2026-02-01']);
    expect(generous.code, generous.err).toBe(0);
    await seedReadings(container, 'pump-future', 'gw-8', T0 + 2 * DAY, 8640, (i) => pumpValues(r, i, 45), { seq0: 8641 }); // Jan 3-5 arrive later
    const next = await cli(['train', '--source', 'pump-future', '--from', '2026-01-03', '--to', '2026-01-05']);
    expect(next.code, next.err).toBe(0);
    expect(next.out).not.toMatch(/older (data|range)/);
    expect(next.out).toMatch(/decision (better on the held-out rows|not better by the margin|not better beyond the noise of the fault placements|the live model flags [\d.]+ % of the normal held-out rows, above the false-alarm ceiling)/);
  });

  it('leaves the loser of a concurrent promotion with a model.json that says it was not promoted, and names it', async () => {
    const first = await cli(['train', '--source', 'pump-race', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(first.code, first.err).toBe(0);
    // The loser has read best.json; the winner promotes while the loser is writing it.
    let winner: Awaited<ReturnType<typeof cli>> | null = null;
    const racing = racingContainer(async () => {
      winner = await cli(['train', '--source', 'pump-race', '--from', '2026-01-03T12:00:00Z', '--to', '2026-01-05']);
    });
    const loser = await cli(['train', '--source', 'pump-race', '--from', '2026-01-03', '--to', '2026-01-05'], context(racing));
    expect(winner!.code, winner!.err).toBe(0);
    expect(winner!.out).toMatch(/^pump-race: promoted/);
    const best = await bestOf('pump-race');
    expect(loser.code).toBe(1);
    const orphan = (/ (\S+) is registered \(models\/pump-race\/\S+\/model\.json, not promoted\) but is not best/.exec(loser.err) ?? [])[1];
    const evaluation = (/; this run's evaluation is in (\S+)$/.exec(lastLine(loser.err) ?? '') ?? [])[1]!;
    expect(lastLine(loser.err)).toBe(
      `pumpwatch-trainer train: PW_TRAINER_REGISTRY_CONFLICT: models/pump-race/best.json changed while this run was deciding: another run promoted ${best.version} first; ${orphan} is registered (models/pump-race/${orphan}/model.json, not promoted) but is not best; run again to compare it with the live model; this run's evaluation is in ${evaluation}`,
    );
    // The run's evaluation is recorded as the race settled it: not promoted.
    expect(evaluation).toMatch(new RegExp(`^models/pump-race/${orphan}/evaluations/\\S+\\.json$`));
    expect(JSON.parse((await container.getBlockBlobClient(evaluation).downloadToBuffer()).toString('utf8')).decision).toMatchObject({ promoted: false, reason: `another run promoted ${best.version} first` });
    expect(orphan).not.toBe(best.version);
    expect((await readModelRecord(container, 'pump-race', orphan!)).decision).toMatchObject({ promoted: false, reason: `another run promoted ${best.version} first` });
    // Every model.json that says promoted is best now or was before.
    for await (const b of container.listBlobsFlat({ prefix: 'models/pump-race/' })) {
      if (!b.name.endsWith('model.json')) continue;
      const rec = await readModelRecord(container, 'pump-race', b.name.split('/')[2]!);
      expect(rec.decision.promoted, rec.version).toBe([best.version, ...best.history.map((h) => h.version)].includes(rec.version));
    }
  });

  it('succeeds when the run that promoted first trained the very same version (the same data, twice at once)', async () => {
    const range = ['train', '--source', 'pump-twin', '--from', '2026-01-01', '--to', '2026-01-03'];
    let inner: Awaited<ReturnType<typeof cli>> | null = null;
    const outer = await cli(range, context(racingContainer(async () => {
      inner = await cli(range);
    })));
    expect(inner!.code, inner!.err).toBe(0);
    const version = (/^pump-twin: promoted (\S+)/m.exec(inner!.out) ?? [])[1];
    expect(outer.code, outer.err).toBe(0);
    expect(outer.out).toMatch(new RegExp(`^pump-twin: promoted ${version} `, 'm'));
    expect((await bestOf('pump-twin')).version).toBe(version);
    expect((await readModelRecord(container, 'pump-twin', version!)).decision.promoted).toBe(true);
  });

  it('does not deploy a version another run replaced as best after this run promoted it, and says how to push the best', async () => {
    await seedReadings(container, 'pump-after', 'gw-10', T0, 8640, (i) => pumpValues(rng(27), i, 30));
    const racing = racingContainer(async () => {
      await promote('pump-after', 'newer', 9);
    }, 'after');
    const res = await cli(['train', '--source', 'pump-after', '--from', '2026-01-01', '--to', '2026-01-03', '--deploy', '--device', 'gw-1'], context(racing));
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^pump-after: promoted (\S+)/m);
    const promoted = (/^pump-after: promoted (\S+)/m.exec(res.out) ?? [])[1]!;
    expect(lastLine(res.err)).toBe(`pump-after: ${promoted} was not deployed: best.json names newer now (another run changed it after this one promoted); to push the best: pumpwatch-trainer deploy --source pump-after --version newer --device gw-1`);
    expect(desiredModels('gw-1')['pump-after']).toBeUndefined();
  });

  it('rolls back away from a version whose model.json is broken', async () => {
    for (const [v, seedNo] of [['c1', 1], ['c2', 2]] as const) await promote('pump-cor', v, seedNo);
    await container.getBlockBlobClient('models/pump-cor/c2/model.json').upload('{}', 2);
    const res = await cli(['rollback', '--source', 'pump-cor', '--no-deploy']);
    expect(res.code, res.err).toBe(0);
    expect((await bestOf('pump-cor')).version).toBe('c1');
  });

  it('train --deploy whose deploy fails says the version is best but not deployed, with the deploy command that pushes it', async () => {
    const query = "SELECT * FROM devices.modules WHERE deviceId = 'gw-typo'";
    const res = await cli(['train', '--source', 'pump-dep', '--from', '2026-01-01', '--to', '2026-01-03', '--deploy', '--query', query]);
    expect(res.code).toBe(1);
    const best = await bestOf('pump-dep');
    expect(res.out).toMatch(new RegExp(`^pump-dep: promoted ${best.version} `));
    expect(res.err.split('\n').slice(-2)).toEqual([
      `deploy: PW_TRAINER_DEPLOY: no module matched; ${best.version} was not deployed`,
      `pump-dep: best.json now names ${best.version}, which was not deployed to every module; its deploy stays pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-dep --version ${best.version} --query 'SELECT * FROM devices.modules WHERE deviceId = '\\''gw-typo'\\'''`,
    ]);
    expect(best.deployPending).toBe(true);
    const push = await cli(['deploy', '--source', 'pump-dep', '--version', best.version, '--device', 'gw-2']);
    expect(push.code, push.err).toBe(0);
    expect(desiredModels('gw-2')['pump-dep']!.version).toBe(best.version);
    expect(await bestOf('pump-dep')).toEqual({ ...best, deployPending: undefined });
  });
});

describe('labels that are not valid', () => {
  it('are named in a warning and counted in model.json; a label with a +00:00 offset is read, one whose to is before its from is refused', async () => {
    const c = az.container('labels-safety-it');
    await c.create();
    const start = T0 + 10 * DAY;
    const r = rng(24);
    await seedReadings(c, 'pump-lb', 'gw-4', start, 3600, (i) => pumpValues(r, i, 25, { shift: i >= 3000 && i < 3300 ? 1.5 : 0 }));
    const faultFrom = start + 3000 * STEP;
    const base = { id: 'lab-1', pumpId: 'pump-lb', kind: 'confirmed-fault' as const, faultType: null, note: 'pressure', alertSeq: null, fromTs: faultFrom, toTs: faultFrom + 299 * STEP, author: 'tech', createdAt: start + DAY, synced: false };
    const put = async (name: string, body: string) => void (await c.getBlockBlobClient(name).upload(body, Buffer.byteLength(body)));
    const rec = toLabelRecord('gw-4', base);
    await put(labelBlobName('gw-4', base), JSON.stringify({ ...rec, from: rec.from.replace('Z', '+00:00'), to: rec.to.replace('.000Z', '+00:00') }));
    await put('labels/gw-4/2026/01/12/lab-2.json', '{"schema":1,"id":"lab-2"');
    const backwards = toLabelRecord('gw-4', { ...base, id: 'lab-3', kind: 'maintenance', fromTs: faultFrom, toTs: faultFrom - 3_600_000 });
    await put(labelBlobName('gw-4', { id: 'lab-3', createdAt: base.createdAt }), JSON.stringify(backwards));
    const res = await cli(['train', '--source', 'pump-lb', '--from', '2026-01-11', '--to', '2026-01-12'], context(c));
    expect(res.code, res.err).toBe(0);
    // The +00:00 label is read: its 300 rows are positives (beside the synthetic faults: one fault is too few to compare on alone).
    expect(res.out).toMatch(/^ {2}as agent .*, misses [\d.]+ % of 300 readings in confirmed faults$/m);
    expect(res.out).toContain('  warning  label blob labels/gw-4/2026/01/12/lab-2.json skipped: not a valid label (');
    expect(res.out).toContain('  warning  label blob labels/gw-4/2026/01/12/lab-3.json skipped: not a valid label (to: to is before from)');
    const record = await readModelRecord(c, 'pump-lb', (await bestOf('pump-lb', c)).version);
    expect(record.data.skippedLabels).toBe(2);
    expect(record.evaluation.challenger.labelled?.rows).toBe(300);
    const all = await cli(['train-all', '--from', '2026-01-11', '--to', '2026-01-12', '--seed', '3'], context(c));
    expect(all.code, all.err).toBe(0);
    expect(all.out.split('\n').filter((l) => l.includes('label blob'))).toEqual([
      expect.stringMatching(/^ {2}warning {2}label blob labels\/gw-4\/2026\/01\/12\/lab-2\.json skipped: not a valid label \(/),
      '  warning  label blob labels/gw-4/2026/01/12/lab-3.json skipped: not a valid label (to: to is before from)',
    ]);

    // A label the storage cannot give (Blob Storage answering 503 to its download, through a proxy) fails the run: it is not an invalid label.
    const proxy = await startBlobProxy(az.port, (req) => (req.method === 'GET' && req.path.endsWith('/lab-1.json') ? 503 : 'forward'));
    const failing = BlobServiceClient.fromConnectionString(proxy.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient('labels-safety-it');
    const unread = await cli(['train', '--source', 'pump-lb', '--from', '2026-01-11', '--to', '2026-01-12', '--seed', '4'], context(failing)).finally(() => proxy.close());
    expect(unread.code).not.toBe(0);
    expect(lastLine(unread.err)).toMatch(/PW_TRAINER_STORAGE: reading the labels failed: Blob Storage answered 503 ServerBusy/);
    expect(unread.out).not.toMatch(/lab-1\.json skipped/);
  });
});

describe('a deploy left pending', () => {
  /**
   * The hub answering the twin query train and train-all make before training, then refusing every
   * twin update (an outage that began meanwhile). A hub that cannot be reached at all stops them
   * before training (trainer-train-all.test.ts), so it leaves nothing pending.
   */
  const deadHub = (): TwinRegistry => ({
    getModuleTwin: (d, m) => registry.getModuleTwin(d, m),
    createQuery: (sql, size) => registry.createQuery(sql, size),
    updateModuleTwin: () => Promise.reject(new Error('connect ETIMEDOUT')),
  });
  /** Marks the deploy of the current best of `source` pending, as a run with --deploy promotes. */
  const markPending = async (source: string) => expect(await setDeployPending(container, (await readBest(container, source))!, true)).toBe(true);
  /** The hub, letting another run in (`meanwhile`) just after the first twin update has landed. */
  const afterFirstUpdate = (meanwhile: () => Promise<void>): TwinRegistry => {
    let raced = false;
    return {
      getModuleTwin: (d, m) => registry.getModuleTwin(d, m),
      createQuery: (sql, size) => registry.createQuery(sql, size),
      updateModuleTwin: async (d, m, patch, etag) => {
        const done = await registry.updateModuleTwin(d, m, patch, etag);
        if (!raced) {
          raced = true;
          await meanwhile();
        }
        return done;
      },
    };
  };
  /** The hub, letting another run in (`meanwhile`) just before the first twin update. */
  const racingHub = (meanwhile: () => Promise<void>): TwinRegistry => {
    let raced = false;
    return {
      getModuleTwin: (d, m) => registry.getModuleTwin(d, m),
      createQuery: (sql, size) => registry.createQuery(sql, size),
      updateModuleTwin: async (d, m, patch, etag) => {
        if (!raced) {
          raced = true;
          await meanwhile();
        }
        return registry.updateModuleTwin(d, m, patch, etag);
      },
    };
  };

  it('is pushed by the same train-all --deploy run again (the Job retrying the shard), which then clears best.json\'s mark', async () => {
    const c = az.container('converge-it');
    await c.create();
    await seedReadings(c, 'pump-42', 'gw-1', T0, 8640, (i) => pumpValues(rng(31), i, 30));
    // The CronJob's arguments; gw-1 uploads pump-42's readings, so the default query finds its module.
    const args = ['train-all', '--shard', '0/1', '--concurrency', '2', '--from', '2026-01-01', '--to', '2026-01-03', '--if-drifted', '--deploy'];
    const first = await cli(args, { ...context(c), registry: deadHub });
    expect(first.code).toBe(1);
    const promoted = (/^pump-42: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
    expect(first.out).toContain('  FAILED gw-1/pumpwatch: PW_TRAINER_DEPLOY: updating the twin of gw-1/pumpwatch failed: connect ETIMEDOUT');
    expect(lastLine(first.err)).toBe(
      `pump-42: best.json now names ${promoted}, which was not deployed to every module; its deploy stays pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-42 --version ${promoted}`,
    );
    expect(await bestOf('pump-42', c)).toMatchObject({ version: promoted, deployPending: true });
    expect(desiredModels('gw-1')['pump-42']).toBeUndefined();

    // The retry, the hub reachable again: the model is live, so nothing is retrained, but it is deployed.
    const retry = await cli(args, context(c));
    expect(retry.code, retry.err).toBe(0);
    expect(retry.out).toMatch(/^pump-42: (skipped|kept)\b/m);
    expect(retry.out).toContain(`pump-42: best.json names ${promoted}, whose deploy is pending (a run that promoted it did not reach every module): deploying it`);
    expect(retry.out).toMatch(new RegExp(`^ {2}ok {5}gw-1/pumpwatch: desired models\\.pump-42 = ${promoted}\\b`, 'm'));
    expect(retry.out).toContain(`pump-42: best.json ${promoted}: deployed, no longer pending`);
    expect(desiredModels('gw-1')['pump-42']!.version).toBe(promoted);
    expect(await bestOf('pump-42', c)).not.toHaveProperty('deployPending');

    // Nothing is pending now: the next night deploys nothing.
    const next = await cli(args, context(c));
    expect(next.code, next.err).toBe(0);
    expect(lastLine(next.out)).toMatch(/^train-all: shard 0\/1: 0 promoted, 0 kept, 1 skipped, 0 failed, 0 deploy pending$/);
    expect(next.out.split('\n').filter((l) => /deploy/.test(l) && !l.startsWith('train-all: shard'))).toEqual([]);
  });

  it('train --deploy pushes a pending best whatever it decides, and without --deploy nothing is pushed', async () => {
    // pump-dep2: promoted by a run whose deploy failed (the mark set, no module has it).
    await seedReadings(container, 'pump-dep2', 'gw-2', T0, 8640, (i) => pumpValues(rng(32), i, 30));
    const range = ['--from', '2026-01-01', '--to', '2026-01-03'];
    const first = await cli(['train', '--source', 'pump-dep2', ...range, '--deploy'], { ...context(), registry: deadHub });
    expect(first.code).toBe(1);
    const best = await bestOf('pump-dep2');
    expect(best.deployPending).toBe(true);
    const plain = await cli(['train', '--source', 'pump-dep2', ...range]);
    expect(plain.code, plain.err).toBe(0);
    expect(desiredModels('gw-2')['pump-dep2']).toBeUndefined();
    const again = await cli(['train', '--source', 'pump-dep2', ...range, '--deploy']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(new RegExp(`^pump-dep2: kept live ${best.version} [^]*\npump-dep2: best\\.json names ${best.version}, whose deploy is pending`));
    expect(desiredModels('gw-2')['pump-dep2']!.version).toBe(best.version);
    expect(await bestOf('pump-dep2')).toEqual({ ...best, deployPending: undefined });
  });

  it('is set and pushed by a --deploy run whose challenger is the live model a hand train without --deploy promoted (the same data: the same version)', async () => {
    await seedReadings(container, 'pump-hand', 'gw-2', T0, 8640, (i) => pumpValues(rng(33), i, 30));
    const range = ['train', '--source', 'pump-hand', '--from', '2026-01-01', '--to', '2026-01-03'];
    const hand = await cli(range);
    expect(hand.code, hand.err).toBe(0);
    const version = (/^pump-hand: promoted (\S+)/m.exec(hand.out) ?? [])[1]!;
    expect(await bestOf('pump-hand')).not.toHaveProperty('deployPending');
    // The nightly run of the same range, the hub down: kept (the challenger is that very version), yet
    // deployed as its own promotion would be: marked pending first, so its failure is not lost.
    const nightly = await cli([...range, '--deploy'], { ...context(), registry: deadHub });
    expect(nightly.code).toBe(1);
    expect(nightly.out).toMatch(new RegExp(`^pump-hand: kept live ${version} \\(.*\\): the challenger is that very version$`, 'm'));
    expect(nightly.out).toContain(`  decision the challenger is the live model itself (version ${version})`);
    expect(nightly.out).toContain(`pump-hand: ${version} is best and is this run's challenger (the same data and options gave the same model): deploying it, as a promotion with --deploy would`);
    expect(lastLine(nightly.err)).toBe(
      `pump-hand: best.json now names ${version}, which was not deployed to every module; its deploy stays pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-hand --version ${version}`,
    );
    expect(await bestOf('pump-hand')).toMatchObject({ version, deployPending: true });
    expect(desiredModels('gw-2')['pump-hand']).toBeUndefined();
    // Its retry, the hub back: the twin gets the version, and the mark is cleared.
    const retry = await cli([...range, '--deploy']);
    expect(retry.code, retry.err).toBe(0);
    expect(desiredModels('gw-2')['pump-hand']!.version).toBe(version);
    expect(await bestOf('pump-hand')).not.toHaveProperty('deployPending');
    // Once more with the hub up: the same version, pushed again (the same twin entry), exit 0.
    const again = await cli([...range, '--deploy']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain(`pump-hand: best.json ${version}: deployed, no longer pending`);
  });

  it('is set and pushed by a --deploy run that lost the promotion of the very same version to a run without --deploy', async () => {
    await seedReadings(container, 'pump-twin2', 'gw-2', T0, 8640, (i) => pumpValues(rng(34), i, 30));
    const range = ['train', '--source', 'pump-twin2', '--from', '2026-01-01', '--to', '2026-01-03'];
    let hand: Awaited<ReturnType<typeof cli>> | null = null;
    // The hand run's best.json write lands just before the --deploy run's; the hub is down.
    const nightly = await cli([...range, '--deploy'], {
      ...context(racingContainer(async () => {
        hand = await cli(range);
      })),
      registry: deadHub,
    });
    expect(hand!.code, hand!.err).toBe(0);
    const version = (/^pump-twin2: promoted (\S+)/m.exec(hand!.out) ?? [])[1]!;
    expect(nightly.out).toMatch(new RegExp(`^pump-twin2: promoted ${version} `, 'm'));
    expect(nightly.code).toBe(1);
    expect(lastLine(nightly.err)).toMatch(new RegExp(`^pump-twin2: best\\.json now names ${version}, which was not deployed to every module; its deploy stays pending in best\\.json`));
    expect(await bestOf('pump-twin2')).toMatchObject({ version, deployPending: true });
    const retry = await cli([...range, '--deploy']);
    expect(retry.code, retry.err).toBe(0);
    expect(desiredModels('gw-2')['pump-twin2']!.version).toBe(version);
    expect(await bestOf('pump-twin2')).not.toHaveProperty('deployPending');
  });

  it('stays pending for the newer version when an older deploy lands over it and settles first: the newer run cannot clear it', async () => {
    const source = 'pump-over';
    const io = () => {
      const out: string[] = [];
      const err: string[] = [];
      return { out, err, io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) } };
    };
    // A: a run deploying x, whose deploy is pending (a Kubernetes retry, a hand deploy), reads best.json.
    await promote(source, 'x', 17);
    await markPending(source);
    const a = (await readBestRecord(container, source))!;
    // B: a train --deploy promotes y, marked pending in the same write, and reads best.json.
    await promote(source, 'y', 18);
    await markPending(source);
    const b = (await readBestRecord(container, source))!;
    // B's twin update lands first; A's deploy (its twin update and its settling) runs right after
    // it, before B settles: the order of the reviewer's deploy-race.mjs.
    const ioA = io();
    let codeA: number | null = null;
    const planA = prepareDeploy(context(), { device: 'gw-1' });
    const ctxB: CommandContext = { ...context(), registry: () => afterFirstUpdate(async () => void (codeA = await deployBest(context(), planA, source, a, ioA.io))) };
    const ioB = io();
    const codeB = await deployBest(ctxB, prepareDeploy(ctxB, { device: 'gw-1' }), source, b, ioB.io);
    expect(codeA).toBe(1);
    expect(ioA.err.at(-1)).toBe(
      'pump-over: best.json moved to y while x was being deployed, so the modules may hold x; the deploy of y is pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-over --version y --device gw-1',
    );
    expect(desiredModels('gw-1')[source]!.version).toBe('x');
    // B's clear, conditional on the ETag B read, fails: A rewrote the mark. B says the deploy is pending.
    expect(codeB).toBe(1);
    expect(ioB.out).not.toContain('pump-over: best.json y: deployed, no longer pending');
    expect(ioB.err.at(-1)).toBe(
      'pump-over: best.json marks the deploy of y pending again: another run deployed while this one did, so the modules may hold its version; the next train or train-all with --deploy pushes y; to push it now: pumpwatch-trainer deploy --source pump-over --version y --device gw-1',
    );
    expect(await bestOf(source)).toMatchObject({ version: 'y', deployPending: true });
    // The next run with --deploy, whatever it decides, pushes y and clears the mark.
    const next = io();
    expect(await deployPendingBest(context(), prepareDeploy(context(), { device: 'gw-1' }), source, null, next.io)).toBe(0);
    expect(desiredModels('gw-1')[source]!.version).toBe('y');
    expect(await bestOf(source)).not.toHaveProperty('deployPending');
  });

  it('is not cleared by the deploy of another version, nor by a deploy during which a newer version was promoted', async () => {
    await promote('pump-pend', 'v1', 11);
    await promote('pump-pend', 'v2', 12);
    await markPending('pump-pend');
    // A hand deploy of an older version leaves the mark of the best one.
    const older = await cli(['deploy', '--source', 'pump-pend', '--version', 'v1', '--device', 'gw-1']);
    expect(older.code, older.err).toBe(0);
    expect(older.out).not.toMatch(/pending/);
    expect(await bestOf('pump-pend')).toMatchObject({ version: 'v2', deployPending: true });

    // While v2 is being deployed, another run promotes v3 with --deploy: v3's mark stays, and the run fails.
    const during = await cli(['deploy', '--source', 'pump-pend', '--device', 'gw-1'], {
      ...context(),
      registry: () =>
        racingHub(async () => {
          await promote('pump-pend', 'v3', 13);
          await markPending('pump-pend');
        }),
    });
    expect(during.code).toBe(1);
    expect(lastLine(during.err)).toBe(
      'pump-pend: best.json moved to v3 while v2 was being deployed, so the modules may hold v2; the deploy of v3 is pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: pumpwatch-trainer deploy --source pump-pend --version v3 --device gw-1',
    );
    expect(desiredModels('gw-1')['pump-pend']!.version).toBe('v2');
    expect(await bestOf('pump-pend')).toMatchObject({ version: 'v3', deployPending: true, history: [{ version: 'v2' }, { version: 'v1' }] });

    // v4 promoted (and deployed, its mark gone) while v3 is being deployed: v3 may have landed over
    // v4 on the gateways, so v4's deploy is marked pending again; the next deploy pushes v4.
    const over = await cli(['deploy', '--source', 'pump-pend', '--device', 'gw-1'], { ...context(), registry: () => racingHub(async () => void (await promote('pump-pend', 'v4', 14))) });
    expect(over.code).toBe(1);
    expect(lastLine(over.err)).toMatch(/^pump-pend: best\.json moved to v4 while v3 was being deployed, so the modules may hold v3; the deploy of v4 is pending in best\.json/);
    expect(await bestOf('pump-pend')).toMatchObject({ version: 'v4', deployPending: true });
    const last = await cli(['deploy', '--source', 'pump-pend', '--device', 'gw-1']);
    expect(last.code, last.err).toBe(0);
    expect(desiredModels('gw-1')['pump-pend']!.version).toBe('v4');
    expect(await bestOf('pump-pend')).not.toHaveProperty('deployPending');
  });
});
