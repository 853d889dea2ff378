/**
 * The container SAS that deployment/README.md tells operators to make is enough for the agent's
 * uploader, including its retry path: a batch uploaded before a crash (or whose answer was lost)
 * is found already there (If-None-Match: * answers 409), and recognising it reads the blob's
 * properties, which needs the SAS's read permission.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { sha256Hex, type EncodedBatch } from '../../sync/encoder.js';
import { SAS_ALLOWED_PERMISSIONS, SAS_NEEDED_PERMISSIONS } from '../../sync/sas-grants.js';
import { uploaderFor, type UploadRequest } from '../../sync/uploader.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';

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
