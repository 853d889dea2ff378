/**
 * A real Azurite for tests: started from node_modules on a free loopback port with its data in a
 * temp folder; can be stopped and restarted on the same port and data (an outage), and removed.
 */
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  ContainerClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY, startAzurite, type AzuriteHandle } from '../../agent/azurite.js';
import { gunzipSync } from 'node:zlib';
import { decodeBatch, type ReadingLine } from '../../sync/encoder.js';
import type { RejectedLine } from '../../sync/rejected-upload.js';

export interface TestAzurite {
  readonly port: number;
  readonly connectionString: string;
  readonly dir: string;
  container(name?: string): ContainerClient;
  /** A container SAS URL (default permissions racwl: no container creation). */
  containerSasUrl(name: string, permissions?: string, expiresOn?: Date): string;
  /**
   * An account SAS URL (what `az storage account generate-sas` gives, on the account's endpoint):
   * no container in its path. `container` appends one, which makes it a URL the sync can use.
   */
  accountSasUrl(container?: string): string;
  /** Stops the process (data kept): the sync target is offline. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Stops it and deletes its folder. */
  dispose(): Promise<void>;
}

export async function startTestAzurite(): Promise<TestAzurite> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-azurite-'));
  let handle: AzuriteHandle | null = await startAzurite({ location: dir });
  const { port, connectionString } = handle;
  // The tests' own reads and seeds (never the agent's or the trainer's clients, which bring their
  // own): a request on a keep-alive socket Azurite closed at that moment fails with "socket hang
  // up" (a sync-faults test failed on it in a CI run), so these few are tried again, quickly.
  const service = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 3, retryDelayInMs: 50, maxRetryDelayInMs: 200 } });
  return {
    port,
    connectionString,
    dir,
    container: (name = 'pumpwatch') => service.getContainerClient(name),
    containerSasUrl: (name, permissions = 'racwl', expiresOn = new Date(Date.now() + 3_600_000)) => {
      const sas = generateBlobSASQueryParameters(
        { containerName: name, permissions: ContainerSASPermissions.parse(permissions), expiresOn },
        new StorageSharedKeyCredential(DEVSTORE_ACCOUNT, DEVSTORE_KEY),
      ).toString();
      return `http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT}/${name}?${sas}`;
    },
    accountSasUrl: (container) => {
      const sas = generateAccountSASQueryParameters(
        {
          expiresOn: new Date(Date.now() + 3_600_000),
          permissions: AccountSASPermissions.parse('rwlac'),
          resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
          services: AccountSASServices.parse('b').toString(),
        },
        new StorageSharedKeyCredential(DEVSTORE_ACCOUNT, DEVSTORE_KEY),
      ).toString();
      return `http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT}${container === undefined ? '' : `/${container}`}?${sas}`;
    },
    stop: async () => {
      await handle?.stop();
      handle = null;
    },
    restart: async () => {
      handle ??= await startAzurite({ location: dir, port });
    },
    dispose: async () => {
      await handle?.stop();
      handle = null;
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    },
  };
}

export interface DecodedBlob {
  name: string;
  metadata: Record<string, string>;
  lines: ReadingLine[];
}

/** Every blob under `prefix`, downloaded and decoded, in name order. */
export async function decodeAllBlobs(container: ContainerClient, prefix = 'readings/'): Promise<DecodedBlob[]> {
  const out: DecodedBlob[] = [];
  for await (const item of container.listBlobsFlat({ prefix, includeMetadata: true })) {
    const body = await container.getBlockBlobClient(item.name).downloadToBuffer();
    out.push({ name: item.name, metadata: item.metadata ?? {}, lines: await decodeBatch(body, item.name) });
  }
  return out;
}

/** Every blob of refused items under `prefix` (none when the container does not exist), decoded, in name order. */
export async function decodeRejectedBlobs(container: ContainerClient, prefix = 'rejected/'): Promise<Array<{ name: string; metadata: Record<string, string>; lines: RejectedLine[] }>> {
  const out: Array<{ name: string; metadata: Record<string, string>; lines: RejectedLine[] }> = [];
  if (!(await container.exists())) return out;
  for await (const item of container.listBlobsFlat({ prefix, includeMetadata: true })) {
    const text = gunzipSync(await container.getBlockBlobClient(item.name).downloadToBuffer()).toString('utf8');
    out.push({ name: item.name, metadata: item.metadata ?? {}, lines: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RejectedLine) });
  }
  return out;
}
