/**
 * The Blob Storage target: a connection string (account key or SAS) with a container name, or a
 * container SAS URL. Builds the SDK's ContainerClient without its own retries (the sync worker's
 * backoff decides) and describes the target without any secret.
 */
import { AnonymousCredential, BlobServiceClient, ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { SyncError } from './errors.js';
import { safeErrorMessage } from './redact.js';
import { sasGrants, type SasGrants } from './sas-grants.js';

export type BlobTarget =
  | { kind: 'connection-string'; connectionString: string; container: string }
  | { kind: 'sas-url'; sasUrl: string };

export interface ClientOptions {
  /**
   * Azure's server-side `?timeout=` (the SDK's tryTimeoutInMs): how long the service works on one
   * request. It ends nothing on the gateway: sync/deadline.ts does (idleTimeoutMs).
   */
  requestTimeoutMs?: number;
  /** A request with no byte moving for this long is given up (sync/deadline.ts; default 60 s). */
  idleTimeoutMs?: number;
  userAgent?: string;
}

function pipelineOptions(opts: ClientOptions): StoragePipelineOptions {
  return {
    retryOptions: { maxTries: 1, tryTimeoutInMs: opts.requestTimeoutMs ?? 300_000 },
    userAgentOptions: { userAgentPrefix: opts.userAgent ?? 'pumpwatch' },
  };
}

/** A ContainerClient for the target; a malformed target is a SyncError that repeats none of it. */
export function containerClient(target: BlobTarget, opts: ClientOptions = {}): ContainerClient {
  try {
    if (target.kind === 'sas-url') return new ContainerClient(target.sasUrl, new AnonymousCredential(), pipelineOptions(opts));
    return BlobServiceClient.fromConnectionString(target.connectionString, pipelineOptions(opts)).getContainerClient(target.container);
  } catch (err) {
    const what = target.kind === 'sas-url' ? 'PUMPWATCH_BLOB_SAS_URL' : 'PUMPWATCH_BLOB_CONNECTION_STRING';
    throw new SyncError('PW_SYNC_BAD_TARGET', `${what} is not usable: ${safeErrorMessage(err).split('\n')[0]}`, { cause: err });
  }
}

/** `account/container at host` with no key or signature: for logs and /status. */
/** The SAS query of the target (a container SAS URL's, or a connection string's SharedAccessSignature=…), null for an account key. */
function sasQuery(target: BlobTarget): string | null {
  if (target.kind === 'sas-url') {
    try {
      return new URL(target.sasUrl).search;
    } catch {
      return null;
    }
  }
  const part = target.connectionString.split(';').find((p) => /^SharedAccessSignature=/i.test(p.trim()));
  return part === undefined ? null : part.trim().slice('SharedAccessSignature='.length);
}

/** What the target's SAS credential grants (sync/sas-grants.ts), null for an account key. Never reads the signature. */
export function targetGrants(target: BlobTarget): SasGrants | null {
  const query = sasQuery(target);
  return query === null ? null : sasGrants(query);
}

/**
 * When a SAS credential of the target expires (its `se`: a container SAS URL, or a connection
 * string with SharedAccessSignature=…), epoch ms; null for an account key or an unreadable `se`.
 * The expiry is not a secret; the signature is never read here.
 */
export function sasExpiry(target: BlobTarget): number | null {
  return targetGrants(target)?.expiresAt ?? null;
}

export function describeTarget(target: BlobTarget): string {
  try {
    const client = containerClient(target);
    return `${client.accountName || '?'}/${client.containerName} at ${new URL(client.url).host}`;
  } catch {
    return target.kind === 'sas-url' ? 'an unusable SAS URL' : 'an unusable connection string';
  }
}
