/**
 * Keeping gateways' desired `models` usable over time, against the real services (the registry in
 * Azurite, module twins in the local hub through the real azure-iothub Registry):
 * - `refresh-urls` signs again the model URLs that expire soon, so a gateway offline longer than
 *   a URL's lifetime comes back to one that downloads;
 * - `deploy` refuses, before writing, a patch that would grow desired past IoT Hub's 32 KB, and
 *   says how to make room; `undeploy` makes it;
 * - deploys racing on one twin (the pods of a train-all Job, pumps of one gateway) all land.
 */
import { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModels } from '../../agent/edge/desired.js';
import { twinSize } from '../../agent/local-hub/json.js';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { addAgentModule, LocalHub } from '../support/local-hub.js';
import { promoteFittedModel } from '../support/registry.js';
import { setDesiredModel } from '../../trainer/deploy/twin.js';
import { hubRegistry, runTrainer, trainerContext } from '../support/trainer.js';

let az: TestAzurite;
let container: ContainerClient;
let hub: LocalHub;
let registry: TwinRegistry;
/** Twin updates the trainer sent (to tell a refused patch from one never sent). */
let updates = 0;
/** Runs once just before the next twin update is sent: another writer gets there first. */
let beforeNextUpdate: (() => void) | null = null;
/** Azurite checks SAS expiry against the wall clock, so the trainer's clock is the real one. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const HOUR = 3_600_000;

const context = (now = NOW): CommandContext => trainerContext(container, { now, registry });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

const models = (device: string, module = 'pumpwatch') => ((hub.desired(device, module) as { models?: Record<string, any> }).models ?? {}) as Record<string, any>;
const expiry = (url: string) => new Date(new URL(url).searchParams.get('se')!).getTime();
const sha = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, sha256: createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex') };
};

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('upkeep');
  await container.create();
  hub = await LocalHub.start();
  const real = hubRegistry(hub);
  registry = {
    getModuleTwin: (d, m) => real.getModuleTwin(d, m),
    createQuery: (sql, size) => real.createQuery(sql, size),
    updateModuleTwin: (d, m, patch, etag) => {
      updates++;
      const hook = beforeNextUpdate;
      beforeNextUpdate = null;
      hook?.();
      return real.updateModuleTwin(d, m, patch, etag);
    },
  };
  for (const device of ['gw-r1', 'gw-r2', 'gw-full']) addAgentModule(hub, device, 'pumpwatch');
  addAgentModule(hub, 'gw-r3', 'pumpwatch-b');
});

afterAll(async () => {
  await hub?.stop();
  await az?.dispose();
});

describe('pumpwatch-trainer refresh-urls', () => {
  const records: Record<string, ModelRecord> = {};

  beforeAll(async () => {
    for (const [i, pump] of ['pump-soon', 'pump-later', 'pump-gone-by'].entries()) records[pump] = await promoteFittedModel(container, pump, 'v1', i + 1, NOW);
    hub.updateDesired('gw-r1', 'pumpwatch', { sync: { intervalSeconds: 60 } });
    // Expires in 2 h (within the default 72 h), on two gateways; another in 7 days (the default).
    for (const device of ['gw-r1', 'gw-r2']) expect((await cli(['deploy', '--source', 'pump-soon', '--device', device, '--expires-hours', '2'])).code).toBe(0);
    expect((await cli(['deploy', '--source', 'pump-later', '--device', 'gw-r1'])).code).toBe(0);
    // Signed 10 days ago for 7 days: expired, as a gateway offline since then finds it.
    const tenDaysAgo = new Date(NOW.getTime() - 240 * HOUR);
    expect((await cli(['deploy', '--source', 'pump-gone-by', '--device', 'gw-r1'], context(tenDaysAgo))).code).toBe(0);
    // A URL of another storage account, expiring soon: not this trainer's to sign.
    const soon = new Date(NOW.getTime() + HOUR).toISOString().replace(/\.\d+Z$/, 'Z');
    hub.updateDesired('gw-r1', 'pumpwatch', {
      models: {
        'pump-foreign': { version: 'v1', url: `https://otheraccount.blob.core.windows.net/pumpwatch/models/pump-foreign/v1/model.onnx?sv=2025-05-05&se=${soon}&sr=b&sp=r&sig=SECRETSIGNATURE`, sha256: 'a'.repeat(64), size: 100 },
      },
    });
  });

  it('signs again only the URLs that expire within the window, patching only their url', async () => {
    const before = { r1: models('gw-r1'), r2: models('gw-r2') };
    expect((await sha(before.r1['pump-gone-by'].url)).status).toBe(403);
    const res = await cli(['refresh-urls']);
    expect(res.code, res.err).toBe(0);
    const lines = res.out.split('\n');
    expect(lines.filter((l) => l.startsWith('refreshed')).map((l) => l.split(':')[0])).toEqual([
      'refreshed gw-r1/pumpwatch models.pump-gone-by',
      'refreshed gw-r1/pumpwatch models.pump-soon',
      'refreshed gw-r2/pumpwatch models.pump-soon',
    ]);
    expect(res.out).toMatch(/^refreshed gw-r1\/pumpwatch models\.pump-gone-by: models\/pump-gone-by\/v1\/model\.onnx: URL valid until .* \(it expired /m);
    expect(res.out).toMatch(
      /^skipped {3}gw-r1\/pumpwatch models\.pump-foreign: https:\/\/otheraccount\.blob\.core\.windows\.net\/pumpwatch\/models\/pump-foreign\/v1\/model\.onnx \(expires .*\) is not in this trainer's container .*; left as it is$/m,
    );
    expect(lines.at(-1)).toBe('refresh-urls: 2 module(s); 3 URL(s) refreshed, 1 skipped, 0 failed; 1 valid beyond 72 h left as they are');
    // No URL query (the SAS) is printed.
    expect(res.out).not.toMatch(/sig=|se=|SECRETSIGNATURE|\?/);

    const after = { r1: models('gw-r1'), r2: models('gw-r2') };
    for (const [device, key] of [['r1', 'pump-soon'], ['r2', 'pump-soon'], ['r1', 'pump-gone-by']] as const) {
      const [was, now] = [before[device][key], after[device][key]];
      expect(now.url).not.toBe(was.url);
      // Only the url changed: the agent's entry is the same model, and it still parses as one.
      expect({ ...now, url: '' }).toEqual({ ...was, url: '' });
      expect(expiry(now.url)).toBe(NOW.getTime() + 168 * HOUR);
      expect(await sha(now.url)).toEqual({ status: 200, sha256: records[key]!.model.sha256 });
    }
    expect(after.r1['pump-later']).toEqual(before.r1['pump-later']);
    expect(after.r1['pump-foreign']).toEqual(before.r1['pump-foreign']);
    expect(parseModels(after.r1)).toMatchObject({ invalid: {} });
    expect(Object.keys((parseModels(after.r1) as { entries: object }).entries).sort()).toEqual(['pump-foreign', 'pump-gone-by', 'pump-later', 'pump-soon']);
    expect(hub.desired('gw-r1', 'pumpwatch')).toMatchObject({ sync: { intervalSeconds: 60 } });

    // Nothing is left to do: a second run writes nothing.
    const sent = updates;
    const again = await cli(['refresh-urls']);
    expect(again.code, again.err).toBe(0);
    expect(again.out.split('\n').at(-1)).toBe('refresh-urls: 2 module(s); 0 URL(s) refreshed, 1 skipped, 0 failed; 4 valid beyond 72 h left as they are');
    expect(updates).toBe(sent);
  });

  it('leaves an entry a deploy changed while its URL was being signed, and refreshes the others of that twin', async () => {
    for (const pump of ['pump-soon', 'pump-later']) expect((await cli(['deploy', '--source', pump, '--device', 'gw-r2', '--expires-hours', '1'])).code).toBe(0);
    const before = models('gw-r2');
    const deployed = { ...before['pump-later'], url: before['pump-later'].url.replace('sp=r', 'sp=r&x=1') };
    // Between the query and the conditional update, a deploy writes pump-later: the update is refused (ETag), the twin read again.
    beforeNextUpdate = () => hub.updateDesired('gw-r2', 'pumpwatch', { models: { 'pump-later': deployed } });
    const sent = updates;
    const res = await cli(['refresh-urls', '--device', 'gw-r2']);
    expect(res.code, res.err).toBe(0);
    expect(updates - sent).toBe(2);
    expect(res.out).toMatch(/^skipped {3}gw-r2\/pumpwatch models\.pump-later: the entry changed while its URL was being signed \(a deploy meanwhile\); left as it is$/m);
    expect(res.out).toMatch(/^refreshed gw-r2\/pumpwatch models\.pump-soon: /m);
    expect(models('gw-r2')['pump-later']).toEqual(deployed);
    expect(expiry(models('gw-r2')['pump-soon'].url)).toBe(NOW.getTime() + 168 * HOUR);
  });

  it('widens the window with --within-hours, and fails (exit 1) on an entry whose model blob is gone, with PW_TRAINER_NO_MODEL', async () => {
    const wide = await cli(['refresh-urls', '--device', 'gw-r1', '--within-hours', '200', '--sas-hours', '400']);
    expect(wide.code, wide.err).toBe(0);
    expect(wide.out.split('\n').at(-1)).toBe('refresh-urls: 1 module(s); 3 URL(s) refreshed, 1 skipped, 0 failed; 0 valid beyond 200 h left as they are');
    expect(expiry(models('gw-r1')['pump-later'].url)).toBe(NOW.getTime() + 400 * HOUR);

    const deleted = await promoteFittedModel(container, 'pump-deleted', 'v1', 9, NOW);
    expect((await cli(['deploy', '--source', 'pump-deleted', '--device', 'gw-r3', '--module', 'pumpwatch-b', '--expires-hours', '1'])).code).toBe(0);
    await container.getBlobClient(deleted.model.blob).delete();
    const gone = await cli(['refresh-urls', '--device', 'gw-r3', '--module', 'pumpwatch-b']);
    expect(gone.code).toBe(1);
    expect(gone.out).toMatch(/^FAILED {4}gw-r3\/pumpwatch-b models\.pump-deleted: PW_TRAINER_NO_MODEL: models\/pump-deleted\/v1\/model\.onnx \(expires .*\) is no longer in the registry: deploy another version of pump-deleted$/m);
    // The default query looks at modules named "pumpwatch" only.
    expect((await cli(['refresh-urls'])).out).not.toMatch(/gw-r3/);

    const bad = await cli(['refresh-urls', '--within-hours', '72', '--sas-hours', '48']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('pumpwatch-trainer refresh-urls: --sas-hours (48) must be longer than --within-hours (72)');
  });

  it("signs again, for the registry's own container, a URL signed when the registry was in the uploads' container", async () => {
    // Before 2026-12-07 the registry sat under models/ beside the uploads; moved as trainer/README.md
    // says (blob names kept), the twins' URLs still point into the uploads' container.
    const own = az.container('upkeep-models');
    await own.create();
    const moved = await promoteFittedModel(own, 'pump-moved', 'v1', 21, NOW);
    addAgentModule(hub, 'gw-r5', 'pumpwatch');
    // valid for days yet: signed again all the same, so the old copy can be deleted after one run
    const later = new Date(NOW.getTime() + 150 * HOUR).toISOString().replace(/\.\d+Z$/, 'Z');
    const old = `${container.url}/${moved.model.blob}?sv=2025-05-05&se=${later}&sr=b&sp=r&sig=OLDSIGNATURE`;
    hub.updateDesired('gw-r5', 'pumpwatch', { models: { 'pump-moved': { version: 'v1', url: old, sha256: moved.model.sha256, size: moved.model.size } } });
    const res = await cli(['refresh-urls', '--device', 'gw-r5'], trainerContext(container, { now: NOW, registry, models: own }));
    expect(res.code, res.out).toBe(0);
    expect(res.out.split('\n').at(-1)).toBe('refresh-urls: 1 module(s); 1 URL(s) refreshed, 0 skipped, 0 failed; 0 valid beyond 72 h left as they are');
    const url = models('gw-r5')['pump-moved'].url as string;
    expect(url.startsWith(`${own.url}/${moved.model.blob}?`)).toBe(true);
    expect(await sha(url)).toEqual({ status: 200, sha256: moved.model.sha256 });
  });

  it('fails (exit 1) an entry whose model blob no longer hashes to its sha256 or has another size with PW_TRAINER_ENTRY_MISMATCH, naming the pump and version and not the SAS, skips one without a sha256, and refreshes the others', async () => {
    addAgentModule(hub, 'gw-r4', 'pumpwatch');
    const whole = await promoteFittedModel(container, 'pump-whole', 'v1', 11, NOW);
    const flipped = await promoteFittedModel(container, 'pump-flipped', 'v1', 12, NOW);
    const cut = await promoteFittedModel(container, 'pump-cut', 'v1', 13, NOW);
    for (const pump of ['pump-whole', 'pump-flipped', 'pump-cut']) expect((await cli(['deploy', '--source', pump, '--device', 'gw-r4', '--expires-hours', '1'])).code).toBe(0);
    // Overwritten since the deploy: one byte changed (the same size, another sha256), and one cut short.
    const bytes = await container.getBlockBlobClient(flipped.model.blob).downloadToBuffer();
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await container.getBlockBlobClient(flipped.model.blob).upload(bytes, bytes.length);
    const actual = createHash('sha256').update(bytes).digest('hex');
    const short = (await container.getBlockBlobClient(cut.model.blob).downloadToBuffer()).subarray(0, 100);
    await container.getBlockBlobClient(cut.model.blob).upload(short, short.length);
    // An entry without the sha256 and size every gateway needs (written by hand): nothing to check its model against.
    const bare = { version: 'v1', url: models('gw-r4')['pump-whole'].url.replace('/pump-whole/', '/pump-bare/') };
    hub.updateDesired('gw-r4', 'pumpwatch', { models: { 'pump-bare': bare } });
    const before = models('gw-r4');

    const res = await cli(['refresh-urls', '--device', 'gw-r4']);
    expect(res.code).toBe(1);
    const refused = (key: string, what: string) =>
      new RegExp(
        `^FAILED {4}gw-r4/pumpwatch models\\.${key}: PW_TRAINER_ENTRY_MISMATCH: models/${key}/v1/model\\.onnx \\(expires [^)]+\\): version v1 of ${key} is not the model of this entry: ${what} ` +
          `\\(the blob was overwritten since the deploy, or the entry edited\\); every gateway would refuse it, so its URL is not signed again: deploy another version of ${key}$`,
        'm',
      );
    expect(res.out).toMatch(refused('pump-flipped', `its bytes hash to ${actual}, the entry's sha256 is ${flipped.model.sha256}`));
    expect(res.out).toMatch(refused('pump-cut', `it has 100 bytes, the entry says ${cut.model.size}`));
    expect(res.out).toMatch(
      /^skipped {3}gw-r4\/pumpwatch models\.pump-bare: models\/pump-bare\/v1\/model\.onnx \(expires [^)]+\): the entry has no sha256 \(64 hex digits\) and size \(bytes\) a gateway accepts, so its model cannot be checked; left as it is: deploy the model instead$/m,
    );
    expect(res.out).toMatch(/^refreshed gw-r4\/pumpwatch models\.pump-whole: models\/pump-whole\/v1\/model\.onnx: URL valid until /m);
    expect(res.out.split('\n').at(-1)).toBe('refresh-urls: 1 module(s); 1 URL(s) refreshed, 1 skipped, 2 failed; 0 valid beyond 72 h left as they are');
    expect(res.out).not.toMatch(/sig=|se=|\?/);

    // The refused entries are left as they were; the whole one downloads from its new URL.
    const after = models('gw-r4');
    expect(after['pump-flipped']).toEqual(before['pump-flipped']);
    expect(after['pump-cut']).toEqual(before['pump-cut']);
    expect(after['pump-bare']).toEqual(bare);
    expect(expiry(after['pump-whole'].url)).toBe(NOW.getTime() + 168 * HOUR);
    expect(await sha(after['pump-whole'].url)).toEqual({ status: 200, sha256: whole.model.sha256 });
  });

  it('fails (exit 1) an entry whose twin update the hub keeps refusing with PW_TRAINER_DEPLOY, and leaves its URL', async () => {
    addAgentModule(hub, 'gw-r6', 'pumpwatch');
    expect((await cli(['deploy', '--source', 'pump-soon', '--device', 'gw-r6', '--expires-hours', '1'])).code).toBe(0);
    const before = models('gw-r6')['pump-soon'];
    // Another writer changes the twin before each conditional update: the hub refuses every one (ETag).
    let rivals = 0;
    const rival = () => {
      rivals++;
      hub.updateDesired('gw-r6', 'pumpwatch', { sync: { intervalSeconds: 60 + rivals } });
      beforeNextUpdate = rival;
    };
    beforeNextUpdate = rival;
    try {
      const res = await cli(['refresh-urls', '--device', 'gw-r6']);
      expect(res.code).toBe(1);
      expect(res.out).toMatch(/^FAILED {4}gw-r6\/pumpwatch models\.pump-soon: PW_TRAINER_DEPLOY: updating the twin of gw-r6\/pumpwatch failed: /m);
      expect(res.out.split('\n').at(-1)).toBe('refresh-urls: 1 module(s); 0 URL(s) refreshed, 0 skipped, 1 failed; 0 valid beyond 72 h left as they are');
    } finally {
      beforeNextUpdate = null;
    }
    expect(models('gw-r6')['pump-soon']).toEqual(before);
  });
});

describe('the 32 KB desired limit: deploy refuses before writing, undeploy makes room', () => {
  const id = (i: number) => `station-north-${String(i).padStart(5, '0')}`;

  it('fails the target with the size, the limit, the entries and the way out, writes nothing, and deploys once undeploy made room', async () => {
    await promoteFittedModel(container, id(1), '20261205-33db560843eb', 1, NOW);
    expect((await cli(['deploy', '--source', id(1), '--device', 'gw-full'])).code).toBe(0);
    const real = models('gw-full')[id(1)];
    // Earlier deploys of pumps 2…n: as many entries of the same shape as 32 KB holds.
    const filled: Record<string, unknown> = { [id(1)]: real };
    let n = 1;
    while (twinSize({ models: { ...filled, [id(n + 1)]: real } }) <= 32 * 1024) {
      n++;
      filled[id(n)] = { ...real, url: real.url.replace(id(1), id(n)) };
    }
    hub.updateDesired('gw-full', 'pumpwatch', { models: filled });
    // What is left may still hold the new entry (its version, and its URL's signature, are of
    // other lengths than the copies'): a value that is no model entry takes all but 60 bytes.
    const room = 32 * 1024 - twinSize(hub.desired('gw-full', 'pumpwatch'));
    if (room > 80) hub.updateDesired('gw-full', 'pumpwatch', { models: { padding: 'x'.repeat(room - 'padding'.length - 60) } });
    const before = hub.desired('gw-full', 'pumpwatch');

    await promoteFittedModel(container, id(n + 1), '20261205-44aa', 2, NOW);
    const sent = updates;
    const full = await cli(['deploy', '--source', id(n + 1), '--device', 'gw-full']);
    expect(full.code).toBe(1);
    const detail = new RegExp(
      `FAILED gw-full/pumpwatch: PW_TRAINER_TWIN_FULL: models\\.${id(n + 1)} was not written to gw-full/pumpwatch: its desired properties would be (\\d+) bytes, over IoT Hub's limit of 32768 bytes; ` +
        `${n} model entries take (\\d+) bytes of them\\. Remove the entries of pumps the gateway no longer serves: pumpwatch-trainer undeploy --source <pump> --device gw-full --module pumpwatch$`,
      'm',
    );
    expect(full.out).toMatch(detail);
    expect(full.out).not.toMatch(/updating the twin|the patch would make it/); // the hub's own refusal, as before
    expect(updates).toBe(sent); // refused before any update was sent
    expect(hub.desired('gw-full', 'pumpwatch')).toEqual(before);

    const un = await cli(['undeploy', '--source', id(2), '--device', 'gw-full']);
    expect(un.code, un.err).toBe(0);
    expect(un.out).toMatch(new RegExp(`^undeploy models\\.${id(2)} → 1 module\\(s\\)\\n  removed gw-full/pumpwatch: desired models\\.${id(2)} deleted, \\$version \\d+$`));
    expect(models('gw-full')).not.toHaveProperty(id(2));
    const now = await cli(['deploy', '--source', id(n + 1), '--device', 'gw-full']);
    expect(now.code, now.out + now.err).toBe(0);
    expect(models('gw-full')[id(n + 1)]).toMatchObject({ version: '20261205-44aa' });
  });
});

describe('pumpwatch-trainer undeploy', () => {
  it('removes models.<source> from the modules of a query, says where it had none, needs a target, and starts a failure with PW_TRAINER_DEPLOY', async () => {
    await promoteFittedModel(container, 'pump-retired', 'v1', 7, NOW);
    expect((await cli(['deploy', '--source', 'pump-retired', '--device', 'gw-r1'])).code).toBe(0);
    const others = Object.keys(models('gw-r1')).filter((k) => k !== 'pump-retired');
    const res = await cli(['undeploy', '--source', 'pump-retired', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-r1' OR deviceId = 'gw-r2' OR deviceId = 'gw-r3'", '--module', 'pumpwatch']);
    expect(res.code, res.err).toBe(0);
    expect(res.out.split('\n')).toEqual([
      'undeploy models.pump-retired → 2 module(s); 1 module(s) the query found skipped: not module "pumpwatch" (--module)',
      expect.stringMatching(/^ {2}removed gw-r1\/pumpwatch: desired models\.pump-retired deleted, \$version \d+$/),
      '  absent  gw-r2/pumpwatch: no models.pump-retired in its desired properties, nothing to remove',
    ]);
    expect(Object.keys(models('gw-r1'))).toEqual(others);
    expect(hub.desired('gw-r1', 'pumpwatch')).toMatchObject({ sync: { intervalSeconds: 60 } });

    hub.updateDesired('gw-r2', 'pumpwatch', { models: { default: models('gw-r2')['pump-soon'] } });
    const def = await cli(['undeploy', '--source', 'default', '--device', 'gw-r2']);
    expect(def.code, def.err).toBe(0);
    expect(models('gw-r2')).not.toHaveProperty('default');
    expect(models('gw-r2')).toHaveProperty('pump-soon');

    const none = await cli(['undeploy', '--source', 'pump-retired']);
    expect(none.code).toBe(2);
    expect(none.err).toBe('pumpwatch-trainer undeploy: give --device D or --query "SQL" (see "pumpwatch-trainer undeploy --help")');
    const nobody = await cli(['undeploy', '--source', 'pump-retired', '--query', "SELECT * FROM devices.modules WHERE deviceId = 'gw-404'"]);
    expect(nobody.code).toBe(1);
    expect(nobody.err).toBe('pumpwatch-trainer undeploy: PW_TRAINER_DEPLOY: no module matched; models.pump-retired was not removed anywhere');
    const missing = await cli(['undeploy', '--source', 'pump-retired', '--device', 'gw-404']);
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(/^ {2}FAILED {2}gw-404\/pumpwatch: PW_TRAINER_DEPLOY: updating the twin of gw-404\/pumpwatch failed: /m);
  });
});

describe('deploys racing on one module twin', () => {
  it('all land: eight writers of different pumps at once, each update conditional on the twin it read', async () => {
    // Three tries at once lost to four writers (the fourth failed with the hub's 412, and the
    // pump's deploy was left pending); the retries now wait a random, growing time.
    addAgentModule(hub, 'gw-race', 'pumpwatch');
    const before = updates;
    const pumps = Array.from({ length: 8 }, (_, i) => `pump-race-${i}`);
    const results = await Promise.allSettled(
      pumps.map((pump) =>
        setDesiredModel(registry, { deviceId: 'gw-race', moduleId: 'pumpwatch' }, pump, { version: `v-${pump}`, url: 'https://example.invalid/m.onnx', sha256: '0'.repeat(64), size: 1, shadow: null }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(Object.keys(models('gw-race')).sort()).toEqual(pumps);
    for (const pump of pumps) expect(models('gw-race')[pump].version).toBe(`v-${pump}`);
    // they did race: more updates were sent than pumps deployed
    expect(updates - before).toBeGreaterThan(pumps.length);
  });
});
