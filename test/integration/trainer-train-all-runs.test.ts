/**
 * train-all's outcome records (runs/{from}_{to}/{source}.json in the registry's container),
 * --json and --resume, through the real `pumpwatch-trainer` process (dist/trainer/cli.js) against
 * Azurite: every source that reached an outcome leaves its record, --json prints those records
 * and a summary on stdout and nothing else, and a retry with --resume of a shard killed with
 * SIGKILL trains again only what the killed pod had not done (and a failed source), while other
 * options train everything again; with --deploy a resumed source's pending deploy is still
 * pushed (that one in this process, for the local hub's twins). Before, nothing was recorded once the pod's log was gone, and
 * a retry trained the whole shard again, adding an evaluation of each source every time.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { hubRegistry, runTrainer, seedDays, trainerContext } from '../support/trainer.js';
import { blobNames as names, evaluationBlobs as evaluations, readJsonBlob as readJson, runContainers, TRAINER, trainerEnv, trainerProcess } from '../support/train-all-runs.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-02'];
const RUNS = 'runs/2026-01-01T00-00-00.000Z_2026-01-02T00-00-00.000Z/';

let az: TestAzurite;

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

const trainer = (name: string, args: string[]) => trainerProcess(az, name, args);
const seeded = (name: string) => runContainers(az, name);

describe('train-all outcome records and --json', () => {
  it('records each source promoted, kept, skipped (with its kind) and failed (with its code), and --json prints those records and a summary that adds up, nothing else on stdout', async () => {
    const { data, models } = await seeded('runs-rec');
    await seedDays(data, 'pump-a', T0, 1, 30, { count: 4320 });
    await seedDays(data, 'pump-new', T0, 1, 30, { count: 60 }); // too few usable readings: fails
    await seedDays(data, 'pump-quiet', T0 + 5 * DAY, 1, 30, { count: 100 }); // none in the range: skipped

    const first = await trainer('runs-rec', ['train-all', ...RANGE, '--json']);
    expect(first.code, first.stderr).toBe(EXIT.dataFailed);
    const lines = first.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const bySource = new Map(lines.filter((l) => 'source' in l).map((l) => [l.source as string, l]));
    expect([...bySource.keys()].sort()).toEqual(['pump-a', 'pump-new', 'pump-quiet']);
    expect(lines.at(-1)).toEqual({
      summary: { shard: '0/1', range: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' }, sources: 3, promoted: 1, kept: 0, skipped: 1, failed: 1, notTried: 0, doneAlready: 0, skipKinds: { 'no-readings': 1 } },
    });
    expect(lines).toHaveLength(4);
    // What a person reads went to stderr: the first line, the FAILED line.
    expect(first.stderr).toMatch(/^train-all: shard 0\/1: 3 of 3 sources, 1 at a time, readings 2026-01-01T00:00:00\.000Z → 2026-01-02T00:00:00\.000Z$/m);
    expect(first.stderr).toMatch(/^pump-new: FAILED PW_TRAINER_NO_DATA: /m);

    // The records in the registry are the lines printed.
    expect((await names(models, 'runs/')).sort()).toEqual([`${RUNS}pump-a.json`, `${RUNS}pump-new.json`, `${RUNS}pump-quiet.json`]);
    for (const [source, line] of bySource) expect(await readJson(models, `${RUNS}${source}.json`), source).toEqual(line);
    const a = bySource.get('pump-a')!;
    const version = a.version as string;
    expect(version).toMatch(/^20260101-/);
    expect(a).toMatchObject({ schema: 1, source: 'pump-a', range: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' }, outcome: 'promoted', live: version, shard: '0/1' });
    expect(a.reason).toEqual(expect.any(String));
    expect(a.reason as string).not.toContain('\n');
    expect(await evaluations(models, 'pump-a')).toEqual([a.evaluation]);
    expect(a.optionsHash).toMatch(/^[0-9a-f]{16}$/);
    expect(a.options).toMatchObject({ seed: 1, ifDrifted: false, deploy: false, exclude: [] });
    expect(a.build).toMatch(/^\d+\.\d+\.\d+\+[0-9a-f]{12}$/);
    expect(Date.parse(a.startedAt as string)).toBeLessThanOrEqual(Date.parse(a.finishedAt as string));
    expect(bySource.get('pump-new')).toMatchObject({ outcome: 'failed', code: 'PW_TRAINER_NO_DATA', reason: expect.stringMatching(/^not enough usable rows of "pump-new" /) });
    expect(bySource.get('pump-new')).not.toHaveProperty('version');
    expect(bySource.get('pump-quiet')).toMatchObject({ outcome: 'skipped', skipKind: 'no-readings', reason: expect.stringMatching(/^no readings between 2026-01-01T00:00:00\.000Z and 2026-01-02T00:00:00\.000Z/) });

    // --if-drifted on the very data of the live model: skipped, the kind recorded; the plain output as before.
    const drifted = await trainer('runs-rec', ['train-all', ...RANGE, '--if-drifted']);
    expect(drifted.code, drifted.stderr).toBe(EXIT.dataFailed);
    expect(drifted.stdout.trim().split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 2 skipped, 1 failed');
    const skipped = await readJson(models, `${RUNS}pump-a.json`);
    expect(skipped).toMatchObject({ outcome: 'skipped', skipKind: 'no-drift', options: { ifDrifted: expect.any(Object) } });
    expect(skipped.optionsHash).not.toBe(a.optionsHash);

    // The same run again: the challenger is the live model itself, kept; the record is replaced by this latest outcome.
    const again = await trainer('runs-rec', ['train-all', ...RANGE]);
    expect(again.stdout.trim().split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 1 kept, 1 skipped, 1 failed');
    const kept = await readJson(models, `${RUNS}pump-a.json`);
    expect(kept).toMatchObject({ outcome: 'kept', version, live: version, optionsHash: a.optionsHash });
    expect(await evaluations(models, 'pump-a')).toContain(kept.evaluation);
    expect(await evaluations(models, 'pump-a')).toHaveLength(2);
  });
});

describe('train-all --resume', () => {
  it('after a pod killed with SIGKILL, does not read or train again the sources it did, trains the rest and a failed one; other options train everything', async () => {
    const { data, models } = await seeded('runs-resume');
    const pumps = ['pump-r0', 'pump-r1', 'pump-r2', 'pump-r3', 'pump-r4'];
    for (const [i, pump] of pumps.entries()) await seedDays(data, pump, T0, 1 + i, 30, { count: 4320 });
    await seedDays(data, 'pump-late', T0, 1, 30, { count: 60 }); // fails: its readings come later

    const child = spawn(process.execPath, [TRAINER, 'train-all', ...RANGE, '--resume'], { env: trainerEnv(az, 'runs-resume'), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.resume();
    let ended = false;
    const exited = once(child, 'exit').finally(() => (ended = true)) as Promise<[number | null, NodeJS.Signals | null]>;
    // Killed once two sources are recorded (pump-late, failed, and one done), with others still to do.
    while (!ended && (await names(models, RUNS)).length < 2) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    expect((await exited)[1], stdout).toBe('SIGKILL');
    const recorded = new Map<string, Record<string, unknown>>();
    for (const name of await names(models, RUNS)) recorded.set(/([^/]+)\.json$/.exec(name)![1]!, await readJson(models, name));
    expect(recorded.get('pump-late')).toMatchObject({ outcome: 'failed', code: 'PW_TRAINER_NO_DATA' });
    const done = [...recorded.values()].filter((r) => r.outcome === 'promoted').map((r) => r.source as string);
    expect(done.length, stdout).toBeGreaterThanOrEqual(1);
    expect(done.length, stdout).toBeLessThan(pumps.length);
    const evaluationsBefore = new Map(await Promise.all(pumps.map(async (p) => [p, await evaluations(models, p)] as const)));

    // The late readings arrive; the Job's retry of the shard.
    await seedDays(data, 'pump-late', T0 + 3_600_000, 1000, 30, { count: 4320 });
    const retry = await trainer('runs-resume', ['train-all', ...RANGE, '--resume']);
    expect(retry.code, retry.stderr).toBe(EXIT.ok);
    for (const pump of done) {
      const r = recorded.get(pump)!;
      expect(retry.stdout).toContain(`${pump}: done already at ${r.finishedAt as string} (promoted ${r.version as string}), not trained again (--resume)`);
      expect(await evaluations(models, pump), pump).toEqual(evaluationsBefore.get(pump));
      expect(await readJson(models, `${RUNS}${pump}.json`), pump).toEqual(r);
    }
    for (const pump of pumps.filter((p) => !done.includes(p))) {
      // (promoted, or kept when the killed pod had promoted it but not yet recorded it)
      expect(retry.stdout, pump).toMatch(new RegExp(`^${pump}: (promoted|kept live \\S+ \\(.*\\): the challenger is that very version)`, 'm'));
      expect(await evaluations(models, pump), pump).toHaveLength(evaluationsBefore.get(pump)!.length + 1);
    }
    expect(retry.stdout).toMatch(/^pump-late: promoted /m);
    expect(await readJson(models, `${RUNS}pump-late.json`)).toMatchObject({ outcome: 'promoted' });
    const count = /^train-all: shard 0\/1: (\d+) promoted, (\d+) kept, 0 skipped, 0 failed, (\d+) done already$/.exec(retry.stdout.trim().split('\n').at(-1)!);
    expect(count && [Number(count[1]) + Number(count[2]), Number(count[3])], retry.stdout).toEqual([pumps.length - done.length + 1, done.length]);

    // Another seed changes the outcome: nothing is resumed.
    const reseeded = await trainer('runs-resume', ['train-all', ...RANGE, '--resume', '--seed', '8', '--json']);
    expect(reseeded.code, reseeded.stderr).toBe(EXIT.ok);
    const lines = reseeded.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.resumed === true)).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ summary: { sources: 6, doneAlready: 0 } });
    for (const pump of pumps) expect(await evaluations(models, pump), pump).toHaveLength(evaluationsBefore.get(pump)!.length + (done.includes(pump) ? 1 : 2));

    // Without --resume every source is trained again, whatever is recorded.
    const full = await trainer('runs-resume', ['train-all', ...RANGE, '--seed', '8']);
    expect(full.stdout).not.toContain('done already');
    expect(full.stdout.trim().split('\n').at(-1)).toMatch(/^train-all: shard 0\/1: 0 promoted, 6 kept, 0 skipped, 0 failed$/);
  });
});

describe('train-all --resume --deploy', () => {
  it('still deploys a resumed source whose deploy an earlier attempt left pending, and records that it was left pending, then that it no longer is', async () => {
    const { data, models } = await seeded('runs-deploy');
    await seedDays(data, 'pump-d', T0, 1, 30, { count: 4320 });
    const hub = await LocalHub.start();
    try {
      // Azurite checks the SAS's expiry against the wall clock: the trainer's clock is the real one.
      const ctx = trainerContext(data, { now: () => new Date(), registry: hubRegistry(hub), models });
      const args = ['train-all', ...RANGE, '--resume', '--deploy'];
      // No module reports pump-d yet: promoted, its deploy left pending.
      const first = await runTrainer(args, ctx);
      expect(first.code, first.err).toBe(EXIT.failure);
      const version = (/^pump-d: promoted (\S+)/m.exec(first.out) ?? [])[1]!;
      expect(await readJson(models, `${RUNS}pump-d.json`)).toMatchObject({ outcome: 'promoted', version, deployPending: true });
      const evaluationsBefore = await evaluations(models, 'pump-d');
      // The gateway comes up; the Job's retry.
      addAgentModule(hub, 'gw-d', 'pumpwatch');
      hub.updateReported('gw-d', 'pumpwatch', { pumps: ['pump-d'] });
      const retry = await runTrainer(args, ctx);
      expect(retry.code, retry.err).toBe(EXIT.ok);
      expect(retry.out).toMatch(new RegExp(`^pump-d: done already at \\S+ \\(promoted ${version}\\), not trained again \\(--resume\\)$`, 'm'));
      expect(retry.out).toContain(`pump-d: best.json names ${version}, whose deploy is pending (a run that promoted it did not reach every module): deploying it`);
      expect(retry.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 0 skipped, 0 failed, 1 done already, 0 deploy pending');
      expect((hub.desired('gw-d', 'pumpwatch') as { models?: Record<string, { version: string }> }).models?.['pump-d']?.version).toBe(version);
      expect((await readBest(models, 'pump-d'))!.pointer).not.toHaveProperty('deployPending');
      expect(await evaluations(models, 'pump-d')).toEqual(evaluationsBefore);
      // the record follows best.json: listing runs/ for pending deploys must not find pump-d still pending
      expect(await readJson(models, `${RUNS}pump-d.json`)).toMatchObject({ outcome: 'promoted', version, deployPending: false });
      const again = await runTrainer([...args, '--json'], ctx);
      expect(again.code, again.err).toBe(EXIT.ok);
      expect(JSON.parse(again.out.trim().split('\n')[0]!)).toMatchObject({ source: 'pump-d', resumed: true, deployPending: false });
    } finally {
      await hub.stop();
    }
  });
});
