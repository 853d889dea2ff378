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

  it('would not do with write, create and list alone (what it said before)', async () => {
    const uploader = uploaderFor({ target: { kind: 'sas-url', sasUrl: azurite.containerSasUrl('pumpwatch', 'cwl') }, createContainer: false });
    const req = await request('readings/p1/2026/12/05/gw-17-000002.jsonl.gz');
    expect(await uploader.upload(req)).toBe('created');
    await expect(uploader.upload(req)).rejects.toMatchObject({ statusCode: 403 });
  });
});
