import { RestError } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { BufferError } from '../../buffer/errors.js';
import { Backoff, classifyFailure, parseRetryAfter } from '../../sync/backoff.js';
import { SyncError } from '../../sync/errors.js';
import { LabelUploadError } from '../../sync/labels-upload.js';

const headers = (h: Record<string, string>) => ({ get: (name: string) => h[name.toLowerCase()] });
const httpError = (statusCode: number, code?: string, h: Record<string, string> = {}) =>
  Object.assign(new RestError(`${code ?? 'error'}\nRequestId:abc`, { statusCode, code }), { response: { headers: headers(h) } });

describe('sync failure classifier', () => {
  it('tells failures that heal (network, throttling, server) from those that need a person', () => {
    const cases: Array<[unknown, string, boolean]> = [
      [new RestError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }), 'offline', true],
      [httpError(503, 'ServerBusy'), 'throttled', true],
      [httpError(429), 'throttled', true],
      [httpError(500, 'InternalError'), 'server', true],
      [httpError(408), 'server', true],
      [httpError(403, 'AuthorizationFailure'), 'unauthorized', false],
      [httpError(401), 'unauthorized', false],
      [httpError(404, 'ContainerNotFound'), 'container-missing', false],
      [httpError(400, 'InvalidHeaderValue'), 'rejected', false],
      [httpError(409, 'ContainerBeingDeleted'), 'throttled', true], // recreated right after a delete
      [httpError(409, 'BlobAlreadyExists'), 'rejected', false],
      [new SyncError('PW_SYNC_BLOB_CONFLICT', 'x'), 'conflict', false],
      [new SyncError('PW_SYNC_BAD_TARGET', 'x'), 'misconfigured', false],
      [new BufferError('PW_BUFFER_DISK_FULL', 'x'), 'buffer', true],
      [new BufferError('PW_BUFFER_IO', 'planning a sync batch: database is locked'), 'buffer', true],
      [new BufferError('PW_BUFFER_CORRUPT', 'x'), 'buffer', false],
    ];
    for (const [err, kind, heals] of cases) expect(classifyFailure(err), kind).toMatchObject({ kind, heals });
  });

  it('names the buffer, not Blob Storage, for a failure of the buffer (classified or a raw SQLite error)', () => {
    const corrupt = new BufferError('PW_BUFFER_CORRUPT', 'reading rows to plan a batch: /data/buffer.sqlite is not a valid database (database disk image is malformed)');
    expect(classifyFailure(corrupt)).toEqual({
      kind: 'buffer',
      heals: false,
      code: 'PW_BUFFER_CORRUPT',
      message: 'the buffer failed (PW_BUFFER_CORRUPT): reading rows to plan a batch: /data/buffer.sqlite is not a valid database (database disk image is malformed)',
      detail: 'reading rows to plan a batch: /data/buffer.sqlite is not a valid database (database disk image is malformed)',
    });
    const raw = Object.assign(new Error('database is locked'), { name: 'SqliteError', code: 'SQLITE_BUSY' });
    expect(classifyFailure(raw)).toMatchObject({ kind: 'buffer', heals: true, code: 'SQLITE_BUSY', message: 'the buffer failed (SQLITE_BUSY): database is locked' });
  });

  it('classifies a failed label upload by the service error it wraps', () => {
    const err = new LabelUploadError('uploading labels failed after 2 of them', { cause: httpError(403, 'AuthorizationFailure') });
    expect(classifyFailure(err)).toMatchObject({ kind: 'unauthorized', heals: false, message: expect.stringMatching(/^uploading labels failed after 2 of them: Blob Storage refused the credentials \(403/) });
    const missing = new LabelUploadError('uploading labels failed after 0 of them', { cause: httpError(404, 'ContainerNotFound') });
    expect(classifyFailure(missing).kind).toBe('container-missing');
  });

  it('keeps the first line of the service message, with secrets removed', () => {
    const f = classifyFailure(new RestError('busy for https://a.blob.core.windows.net/c?sv=1&amp;sig=SECRET123\nRequestId:1', { statusCode: 500, code: 'InternalError' }));
    expect(f.message).toBe('Blob Storage answered 500 InternalError. busy for https://a.blob.core.windows.net/c?sv=[redacted]&amp;sig=[redacted]');
  });

  it('tells a refusal (401/403, another 4xx) by status and code only, never by the body a proxy may fill with the request', () => {
    const body = 'denied for https://a.blob.core.windows.net/c?sv=1&sig=SECRET123\nRequestId:1';
    const denied = classifyFailure(new RestError(body, { statusCode: 403, code: 'AuthorizationFailure' }));
    expect(denied.message).toBe('Blob Storage refused the credentials (403 AuthorizationFailure): check the connection string or SAS URL (key, expiry; a container SAS needs permissions rcw).');
    const rejected = classifyFailure(new RestError(body, { statusCode: 400, code: '<b>sig=SECRET123</b>' }));
    expect(rejected.message).toBe('Blob Storage refused the request (400).');
  });

  it('reads Retry-After as seconds or an HTTP date, and x-ms-retry-after-ms', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseRetryAfter(httpError(503, 'x', { 'retry-after': '7' }), now)).toBe(7000);
    expect(parseRetryAfter(httpError(503, 'x', { 'retry-after': new Date(now + 12_000).toUTCString() }), now)).toBe(12_000);
    expect(parseRetryAfter(httpError(429, 'x', { 'x-ms-retry-after-ms': '250' }), now)).toBe(250);
    expect(parseRetryAfter(httpError(503), now)).toBeUndefined();
    expect(classifyFailure(httpError(429, 'x', { 'retry-after': '3' }), now).retryAfterMs).toBe(3000);
  });
});

describe('sync backoff policy', () => {
  const heals = { heals: true };

  it('doubles from the first delay up to the cap, and starts over after a success', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 900_000, jitter: 0 });
    expect([1, 2, 3, 4, 5].map(() => b.next(heals))).toEqual([1000, 2000, 4000, 8000, 10_000]);
    b.reset();
    expect(b.next(heals)).toBe(1000);
  });

  it('takes up to the jitter share off the exponential delays at random, never adds', () => {
    expect(new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 1, jitter: 0.5 }, () => 0).next(heals)).toBe(1000);
    expect(new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 1, jitter: 0.5 }, () => 0.999999).next(heals)).toBe(500);
  });

  it('never retries a failure that needs a person sooner than the slow pace, whatever the jitter', () => {
    const slow = (jitter: number, random: number) => new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 60_000, jitter }, () => random).next({ heals: false });
    expect(slow(0.5, 0)).toBe(60_000);
    expect(slow(0.5, 0.999999)).toBe(66_000); // at most 10 % added, so a fleet blocked together spreads out
    expect(slow(1, 0.5)).toBe(63_000);
    expect(slow(0.05, 0.999999)).toBe(63_000); // a smaller jitter adds less
    expect(slow(0, 0.999999)).toBe(60_000);
  });

  it('waits at least Retry-After, within a sane bound', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 900_000, jitter: 0, maxRetryAfterMs: 60_000 });
    expect(b.next({ heals: true, retryAfterMs: 30_000 })).toBe(30_000);
    expect(b.next({ heals: true, retryAfterMs: 10 })).toBe(2000);
    expect(b.next({ heals: true, retryAfterMs: 86_400_000 })).toBe(60_000);
  });

  it('retries failures that need a person at the slow pace, not exponentially', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 10_000, slowMs: 900_000, jitter: 0 });
    expect([1, 2, 3].map(() => b.next({ heals: false }))).toEqual([900_000, 900_000, 900_000]);
  });
});
