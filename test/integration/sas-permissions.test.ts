/**
 * The container SAS that deployment/README.md tells operators to make is enough for the agent's
 * uploader, including its retry path: a batch uploaded before a crash (or whose answer was lost)
 * is found already there (If-None-Match: * answers 409), and recognising it reads the blob's
 * properties, which needs the SAS's read permission.
 *
 * A SAS granting more (delete, list: whoever takes it from the gateway lists and deletes the
 * uploads) and a short status token, at the agent's start: warnings in the log and
 * `sync.credentialWarnings` in /status, naming the letters, never the signature or the token; the
 * agent still starts and uploads with them (an upgraded gateway keeps its credentials). Before, the
 * agent read the SAS's `se` but never its `sp`, and said nothing of either.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STATUS_TOKEN_MIN_LENGTH } from '../../agent/http/auth.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { packageRoot } from '../../agent/paths.js';
import { sha256Hex, type EncodedBatch } from '../../sync/encoder.js';
import { SAS_ALLOWED_PERMISSIONS, SAS_NEEDED_PERMISSIONS } from '../../sync/sas-grants.js';
import { uploaderFor, type UploadRequest } from '../../sync/uploader.js';
import { postJson, testAgentConfig } from '../support/agent.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let azurite: TestAzurite;
beforeAll(async () => {
  azurite = await startTestAzurite();
  await azurite.container('pumpwatch').create();
});
afterAll(async () => {
  await azurite?.dispose();
});

/** The `sp=` of the SAS URL row of deployment/README.md's variable table. */
function documentedPermissions(): string {
  const row = readFileSync(join(packageRoot(), 'deployment', 'README.md'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('| `PUMPWATCH_BLOB_SAS_URL`'));
  const sp = /`sp=([a-z]+)`/.exec(row ?? '')?.[1];
  expect(sp, 'deployment/README.md names the SAS permissions as `sp=…`').toBeDefined();
  return sp!;
}

async function request(name: string): Promise<UploadRequest> {
  const raw = Buffer.from('{"pumpId":"p1","ts":1}\n');
  const body = await promisify(gzip)(raw);
  const encoded: EncodedBatch = { body, sha256: await sha256Hex(body), rawSha256: await sha256Hex(raw), rawBytes: raw.length, rowCount: 1 };
  return { blobName: name, encoded, metadata: { sha256: encoded.sha256 } };
}

describe('the container SAS of deployment/README.md', () => {
  it('lets the agent upload a batch, and recognise it when the upload is tried again', async () => {
    const uploader = uploaderFor({ target: { kind: 'sas-url', sasUrl: azurite.containerSasUrl('pumpwatch', documentedPermissions()) }, createContainer: false });
    const req = await request('readings/p1/2026/12/05/gw-17-000001.jsonl.gz');
    expect(await uploader.upload(req)).toBe('created');
    expect(await uploader.upload(req)).toBe('already-present');
  });

  it('needs read and write only (sync/sas-grants.ts): create alone answers the retry with a 403, not the 409 that leads to the comparison', async () => {
    expect(documentedPermissions()).toBe(SAS_ALLOWED_PERMISSIONS);
    const enough = uploaderFor({ target: { kind: 'sas-url', sasUrl: azurite.containerSasUrl('pumpwatch', SAS_NEEDED_PERMISSIONS) }, createContainer: false });
    const req = await request('readings/p1/2026/12/05/gw-17-000003.jsonl.gz');
    expect(await enough.upload(req)).toBe('created');
    expect(await enough.upload(req)).toBe('already-present');
    const createOnly = uploaderFor({ target: { kind: 'sas-url', sasUrl: azurite.containerSasUrl('pumpwatch', 'rc') }, createContainer: false });
    const other = await request('readings/p1/2026/12/05/gw-17-000004.jsonl.gz');
    expect(await createOnly.upload(other)).toBe('created');
    await expect(createOnly.upload(other)).rejects.toMatchObject({ statusCode: 403 });
  });

  it('would not do with write, create and list alone (what it said before)', async () => {
    const uploader = uploaderFor({ target: { kind: 'sas-url', sasUrl: azurite.containerSasUrl('pumpwatch', 'cwl') }, createContainer: false });
    const req = await request('readings/p1/2026/12/05/gw-17-000002.jsonl.gz');
    expect(await uploader.upload(req)).toBe('created');
    await expect(uploader.upload(req)).rejects.toMatchObject({ statusCode: 403 });
  });
});

/** Starts an agent syncing to Azurite with `sasUrl` and `token`; returns its /status and its log, after an upload. */
async function runWith(sasUrl: string, token: string): Promise<{ sync: Record<string, unknown>; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sas-warnings-'));
  const lines: string[] = [];
  writeFileSync(join(dir, 'default-model.onnx'), makeModel());
  const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_SYNC: 'auto', PUMPWATCH_BLOB_SAS_URL: sasUrl, PUMPWATCH_STATUS_TOKEN: token, PUMPWATCH_SYNC_INTERVAL_SECONDS: '1', PUMPWATCH_LOG_LEVEL: 'info' });
  const agent = new Agent({ config, logger: createLogger('info', { write: (line: string) => void lines.push(line) }), defaultModelPath: join(dir, 'default-model.onnx') });
  try {
    await agent.start();
    const url = `http://127.0.0.1:${agent.httpAddress()!.port}`;
    const auth = { authorization: `Bearer ${token}` };
    const r = rng(5);
    const start = Date.now() - 60_000;
    const readings = Array.from({ length: 10 }, (_, i) => ({ pumpId: 'pump-a', ts: new Date(start + i * 1000).toISOString(), values: normalValues(r, i) }));
    expect((await postJson(`${url}/readings`, readings, auth)).status).toBe(202);
    let sync: Record<string, unknown> = {};
    await vi.waitFor(
      async () => {
        sync = ((await (await fetch(`${url}/status`, { headers: auth })).json()) as { sync: Record<string, unknown> }).sync;
        expect(sync.uploadedRows).toBe(10);
      },
      { timeout: 20_000, interval: 200 },
    );
    return { sync, log: lines.join('') };
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
}

const signatureOf = (url: string): string => new URL(url).searchParams.get('sig')!;

describe('credentials at the agent\'s start', () => {
  it('warns of a SAS with delete and list and of a short token, in the log and /status, naming the letters only, and uploads all the same', async () => {
    const sasUrl = azurite.containerSasUrl('pumpwatch', 'racwdl');
    const token = 'short-token-7f3a';
    const { sync, log } = await runWith(sasUrl, token);
    expect(sync.credentialWarnings).toEqual([expect.stringMatching(/^the SAS credential of the sync target: its permissions sp=racwdl grants a, d, l, which the sync does not use.*sign it with sp=rcw$/)]);
    const entries = log.trim().split('\n').map((l) => JSON.parse(l) as { level: number; code?: string; msg: string; permissions?: string });
    expect(entries.filter((e) => e.code === 'PW_SYNC_SAS_PERMISSIONS')).toEqual([expect.objectContaining({ level: 40, permissions: 'racwdl', msg: (sync.credentialWarnings as string[])[0] })]);
    expect(entries.filter((e) => e.code === 'PW_STATUS_TOKEN_SHORT')).toEqual([
      expect.objectContaining({ level: 40, msg: `PUMPWATCH_STATUS_TOKEN has ${token.length} characters, fewer than ${STATUS_TOKEN_MIN_LENGTH}: a short token is guessed; make one with openssl rand -hex 32` }),
    ]);
    for (const secret of [signatureOf(sasUrl), encodeURIComponent(signatureOf(sasUrl)), token]) {
      expect(log).not.toContain(secret);
      expect(JSON.stringify(sync)).not.toContain(secret);
    }
  });

  it('says nothing of a SAS of the permissions the sync uses and a long token', async () => {
    const { sync, log } = await runWith(azurite.containerSasUrl('pumpwatch', 'rcw'), 'a'.repeat(STATUS_TOKEN_MIN_LENGTH));
    expect(sync.credentialWarnings).toEqual([]);
    expect(log).not.toMatch(/PW_SYNC_SAS_PERMISSIONS|PW_SYNC_SAS_SCOPE|PW_SYNC_SAS_LIFETIME|PW_STATUS_TOKEN_SHORT/);
  });

  it('warns of an account SAS (it reaches the registry\'s container too) and of a SAS living past a year, and uploads all the same', async () => {
    // The security re-check: an account SAS with the container in its path passed render.sh and the agent without a word.
    const account = await runWith(azurite.accountSasUrl('pumpwatch'), 'a'.repeat(STATUS_TOKEN_MIN_LENGTH));
    expect(account.sync.credentialWarnings).toEqual([
      expect.stringMatching(/its permissions sp=rwlac grants l, a, which the sync does not use/),
      'the SAS credential of the sync target: it is an account SAS (ss=, srt=): it reaches every container of the account, the model registry\'s included, and creates containers; sign a container SAS (sr=c) for the uploads\' container',
    ]);
    expect(account.log).toContain('"code":"PW_SYNC_SAS_SCOPE"');
    const twoYears = new Date(Date.now() + 730 * 86_400_000);
    const long = await runWith(azurite.containerSasUrl('pumpwatch', 'rcw', twoYears), 'a'.repeat(STATUS_TOKEN_MIN_LENGTH));
    expect(long.sync.credentialWarnings).toEqual([expect.stringMatching(/^the SAS credential of the sync target: it expires at \d{4}-.*, in 730 days: a SAS taken from a gateway would work that long; sign one for at most 365 days$/)]);
    expect(long.log).toContain('"code":"PW_SYNC_SAS_LIFETIME"');
  });
});
