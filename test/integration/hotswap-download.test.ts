/**
 * The model downloader against real loopback servers: HTTPS with a CA made at start-up (trusted
 * only when injected), plain HTTP only when allowed, retries of transient failures, and no retry
 * of a permanent one. Messages never show the URL's query string (it may hold a SAS token).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelDownloadError, downloadModel, type DownloadOptions } from '../../inference/download.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel } from '../support/models.js';

let https: ModelServer;
let http: ModelServer;
const bytes = makeModel({ version: 'dl-1' });
const base: DownloadOptions = { maxBytes: 1 << 20, timeoutMs: 10_000, allowInsecure: false, attempts: 3, backoff: { baseMs: 5, capMs: 10 } };

async function failure(p: Promise<unknown>): Promise<ModelDownloadError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelDownloadError);
  return err as ModelDownloadError;
}

beforeAll(async () => {
  https = await ModelServer.start({ https: true });
  http = await ModelServer.start();
});

afterAll(async () => {
  await https?.stop();
  await http?.stop();
});

describe('downloadModel', () => {
  it('downloads over HTTPS from a server whose CA is injected, and verifies the bytes', async () => {
    const entry = https.add('m.onnx', bytes, 'dl-1');
    const got = await downloadModel(entry, { ...base, ca: https.ca! });
    expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0);
  });

  it('refuses a server certificate it does not trust, without retrying', async () => {
    const entry = https.add('m2.onnx', bytes, 'dl-1');
    const before = https.requests.length;
    const err = await failure(downloadModel(entry, base));
    expect(err).toMatchObject({ code: 'PW_MODEL_TLS', transient: false });
    expect(https.requests.length).toBe(before);
  });

  it('tries a server certificate not valid yet by the gateway clock again later, as a transient failure, and downloads once it is valid', async () => {
    // A gateway that booted with its clock behind (or a certificate renewed early) sees this until NTP
    // sets the clock; a refusal would hold until the cloud sent another model.
    const early = await ModelServer.start({ certValidFrom: new Date(Date.now() + 24 * 3600 * 1000) });
    try {
      const entry = early.add('m.onnx', bytes, 'dl-1');
      const err = await failure(downloadModel(entry, { ...base, ca: early.ca!, attempts: 1 }));
      expect(err).toMatchObject({ code: 'PW_MODEL_TLS', transient: true });
      expect(err.message).toBe(`cannot download ${early.baseUrl}/models/m.onnx: CERT_NOT_YET_VALID (the server's certificate is not valid yet by this gateway's clock)`);

      await early.useValidCertificate();
      const got = await downloadModel(entry, { ...base, ca: early.ca! });
      expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0);
    } finally {
      await early.stop();
    }
  });

  it('refuses plain http:// unless insecure URLs are allowed', async () => {
    const entry = http.add('m.onnx', bytes, 'dl-1');
    const err = await failure(downloadModel(entry, base));
    expect(err.code).toBe('PW_MODEL_URL_INVALID');
    expect(err.message).toMatch(/must use https:\/\/ \(plain http:\/\/ needs PUMPWATCH_ALLOW_INSECURE_MODEL_URLS=1\)/);
    await expect(downloadModel(entry, { ...base, allowInsecure: true })).resolves.toHaveLength(bytes.length);
  });

  it('retries a server error with backoff, then gives up with a transient error', async () => {
    const entry = http.add('busy.onnx', bytes, 'dl-1', { kind: 'status', status: 503 });
    const retries: number[] = [];
    const err = await failure(downloadModel(entry, { ...base, allowInsecure: true, onRetry: (n) => retries.push(n) }));
    expect(err).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', transient: true });
    expect(retries).toEqual([1, 2]);
    expect(http.requests.filter((r) => r.path === '/models/busy.onnx')).toHaveLength(3);
  });

  it('downloads again from byte 0, once, when a resume within one download joined other bytes (a server without validators), instead of refusing the version for good', async () => {
    // Before, only bytes kept by an earlier call were started over: a resume of this call onto a
    // stale copy was a PW_MODEL_SHA256_MISMATCH at once, which the updater keeps as a refusal.
    const entry = http.add('stale.onnx', bytes, 'dl-1', { kind: 'stale-resume', bytes: 1000 });
    const got = await downloadModel(entry, { ...base, allowInsecure: true });
    expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true);
    expect(http.requests.filter((r) => r.path === '/models/stale.onnx').map((r) => r.range)).toEqual([null, 'bytes=1000-', null]);
  });

  it('waits at least the Retry-After of a throttling server before it tries again', async () => {
    const entry = http.add('throttled.onnx', bytes, 'dl-1', { kind: 'status', status: 429, retryAfter: '1', times: 1 });
    const delays: number[] = [];
    const backoff = { baseMs: 5, capMs: 60_000 }; // the first retry would come after 3 to 5 ms
    const got = await downloadModel(entry, { ...base, allowInsecure: true, backoff, onRetry: (_n, _e, ms) => delays.push(ms) });

    expect(got).toHaveLength(bytes.length);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(1000);
  });

  it('leaves a Retry-After longer than its backoff cap to its caller, at once, instead of holding a download slot', async () => {
    const entry = http.add('busy-long.onnx', bytes, 'dl-1', { kind: 'status', status: 503, retryAfter: '120' });
    const err = await failure(downloadModel(entry, { ...base, allowInsecure: true }));

    expect(err).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', transient: true, retryAfterMs: 120_000 });
    expect(http.requests.filter((r) => r.path === '/models/busy-long.onnx')).toHaveLength(1);
  });

  it("reads a throttling server's Retry-After as the sync does: a fraction of seconds, no negative or impossible date, and an hour at most", async () => {
    const cases: Array<[string, number | null]> = [['1.5', 1500], ['-5', null], ['Tue, 31 Feb 2026 10:00:00 GMT', null], ['99999999999', 3_600_000]];
    const got: Array<number | null> = [];
    for (const [i, [value]] of cases.entries()) {
      const entry = http.add(`retry-after-${i}.onnx`, bytes, 'dl-1', { kind: 'status', status: 503, retryAfter: value });
      got.push((await failure(downloadModel(entry, { ...base, allowInsecure: true, attempts: 1 }))).retryAfterMs);
    }
    // Before, Date.parse read "1.5" and "-5" as dates of 2001 and 31 Feb as 3 March, all past (0 ms), and the last was 3,170 years.
    expect(got).toEqual(cases.map(([, ms]) => ms));
  });

  it('says a redirect loop is one, after following 3 redirects, without the query', async () => {
    const { createServer } = await import('node:http');
    const loop = createServer((req, res) => res.writeHead(302, { location: req.url ?? '/' }).end());
    await new Promise<void>((done) => loop.listen(0, '127.0.0.1', done));
    try {
      const url = `http://127.0.0.1:${(loop.address() as { port: number }).port}/models/loop.onnx`;
      const err = await failure(downloadModel({ url: `${url}?sig=SECRET`, sha256: 'a'.repeat(64), size: bytes.length }, { ...base, allowInsecure: true }));
      expect(err.code).toBe('PW_MODEL_HTTP_STATUS');
      expect(err.message).toBe(`${url} answered HTTP 302: a redirect after 3 followed (too many redirects, or a loop)`);
    } finally {
      await new Promise((done) => loop.close(done));
    }
  });

  it('does not retry a 403, and keeps the SAS token out of the message', async () => {
    const entry = http.add('denied.onnx', bytes, 'dl-1', { kind: 'status', status: 403 });
    const err = await failure(downloadModel(entry, { ...base, allowInsecure: true }));
    expect(err).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', transient: false });
    expect(err.message).toBe(`${http.baseUrl}/models/denied.onnx answered HTTP 403`);
    expect(http.requests.filter((r) => r.path === '/models/denied.onnx')).toHaveLength(1);
  });

  it("tells a 403 of a URL whose SAS expired by the gateway's clock apart, with the expiry and Blob Storage's code, as permanent, without the query", async () => {
    const entry = http.add('expired.onnx', bytes, 'dl-1', { kind: 'sas' });
    const err = await failure(downloadModel({ ...entry, url: `${entry.url}&se=2020-11-28T10%3A00%3A00Z` }, { ...base, allowInsecure: true }));
    expect(err).toMatchObject({ code: 'PW_MODEL_URL_EXPIRED', transient: false, local: false });
    expect(err.message).toBe(
      `the model URL's signature expired at 2020-11-28T10:00:00Z (its "se"); deploy the model again for a fresh URL: ${http.baseUrl}/models/expired.onnx answered HTTP 403 (AuthenticationFailed)`,
    );
    expect(http.requests.filter((r) => r.path === '/models/expired.onnx')).toHaveLength(1);

    // A date alone is a valid `se` too (midnight UTC).
    const dateOnly = await failure(downloadModel({ ...entry, url: `${entry.url}&se=2020-11-28` }, { ...base, allowInsecure: true }));
    expect(dateOnly.message).toMatch(/^the model URL's signature expired at 2020-11-28T00:00:00Z \(its "se"\);/);
  });

  it("names Blob Storage's code for a refusal that is not an expiry, and does not take a malformed se for a date", async () => {
    const missing = http.add('gone.onnx', bytes, 'dl-1', { kind: 'status', status: 404, errorCode: 'BlobNotFound' });
    const gone = await failure(downloadModel({ ...missing, url: `${missing.url}&se=2020-01-01T00%3A00%3A00Z` }, { ...base, allowInsecure: true }));
    expect(gone).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', transient: false });
    expect(gone.message).toBe(`${http.baseUrl}/models/gone.onnx answered HTTP 404 (BlobNotFound)`);

    const denied = http.add('denied-sas.onnx', bytes, 'dl-1', { kind: 'status', status: 403, errorCode: 'AuthenticationFailed' });
    const odd = await failure(downloadModel({ ...denied, url: `${denied.url}&se=1` }, { ...base, allowInsecure: true }));
    expect(odd).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', transient: false });
    expect(odd.message).toBe(`${http.baseUrl}/models/denied-sas.onnx answered HTTP 403 (AuthenticationFailed)`);
  });

  it('stops when cancelled by a newer desired model', async () => {
    const entry = { ...http.add('slow.onnx', bytes, 'dl-1', { kind: 'status', status: 503 }) };
    const abort = new AbortController();
    const p = downloadModel(entry, { ...base, allowInsecure: true, attempts: 10, backoff: { baseMs: 60_000, capMs: 60_000 }, signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    const err = await failure(p);
    expect(err.code).toBe('PW_MODEL_DOWNLOAD_ABORTED');
  });
});
