/**
 * The trainer CLI (a real process, dist/trainer/cli.js) against a Blob Storage endpoint that
 * answers with a multi-line body echoing the request URL and its authorization header: what the
 * CLI prints must hold neither the SAS signature nor the SharedKey signature nor the account key.
 */
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';
import { packageRoot } from '../../agent/paths.js';

const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');
const SAS = generateBlobSASQueryParameters(
  { containerName: 'pumpwatch', permissions: ContainerSASPermissions.parse('rl'), expiresOn: new Date(Date.now() + 3_600_000) },
  new StorageSharedKeyCredential(DEVSTORE_ACCOUNT, DEVSTORE_KEY),
);

let server: Server;
let port: number;
/** Authorization headers the endpoint received (SharedKey signatures): none may be printed. */
const authorizations = new Set<string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.headers.authorization) authorizations.add(req.headers.authorization);
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`Bad request\nCannot ${req.method} ${req.url}\nauthorization=${req.headers.authorization}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function trainer(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TRAINER, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, output: `${stdout}${stderr}` });
    });
  });
}

const TARGETS: Array<[string, () => Record<string, string>]> = [
  ['a container SAS URL', () => ({ PUMPWATCH_BLOB_SAS_URL: `http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT}/pumpwatch?${SAS.toString()}` })],
  [
    'an account key connection string',
    () => ({ PUMPWATCH_BLOB_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT};` }),
  ],
];

describe('pumpwatch-trainer output when Blob Storage echoes the request in a multi-line error', () => {
  it.each(TARGETS)('train-all via %s: a PW_TRAINER_STORAGE failure without any signature or key', async (_what, env) => {
    const { code, output } = await trainer(['train-all', '--days', '1'], env());
    expect(code).toBe(1);
    expect(output).toMatch(/^pumpwatch-trainer train-all: PW_TRAINER_STORAGE: listing the sources in readings\/ failed: Blob Storage answered 400$/m);
    expectNoSecret(output);
  });

  it.each(TARGETS)('train via %s: the failure is printed without any signature or key', async (_what, env) => {
    const { code, output } = await trainer(['train', '--source', 'pump-1', '--days', '1'], env());
    expect(code).toBe(1);
    expect(output).toMatch(/^pumpwatch-trainer train: PW_TRAINER_/m);
    expectNoSecret(output);
  });
});

function expectNoSecret(output: string): void {
  expect(output).not.toContain(SAS.signature);
  expect(output).not.toContain(encodeURIComponent(SAS.signature));
  expect(output).not.toContain(DEVSTORE_KEY);
  for (const auth of authorizations) expect(output).not.toContain(auth.split(':').at(-1));
  expect(output).not.toMatch(/SharedKey [^:\s]+:(?!\[redacted\])/);
  expect(output).not.toMatch(/sig=(?!\[redacted\])/);
}
