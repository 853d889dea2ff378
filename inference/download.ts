/**
 * Model download: HTTPS (plain HTTP only when allowed, for development and tests), a size limit
 * checked before and while reading, a timeout per attempt, sha256 computed while the bytes arrive,
 * and retries with backoff that resume with a Range request when the server supports it (on the
 * newest URL of the same bytes, when a SAS URL is signed again meanwhile: see `latestUrl`). With
 * `partialPath`, the bytes received are kept on disk, so a download tried again later (the
 * updater's next round, an agent restart) resumes too (see partial-download.ts).
 * Permanent failures (a 4xx, too large, wrong size or hash) are never retried; a server's
 * Retry-After is waited for, or handed to the caller when it is longer than the backoff cap.
 * Messages name the URL without its query string (it may hold a SAS token), Blob Storage's error
 * code (`x-ms-error-code`), and, for a refused signature, when the URL's SAS expires (`se`).
 */
import { createHash, type Hash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { parseRetryAfter } from '../lib/retry-after.js';
import { backoffDelay, sleep, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { PartialDownload, type Validators } from './partial-download.js';

export interface DownloadRequest {
  url: string;
  sha256: string;
  /** Exact size in bytes, as the desired entry states it. */
  size: number;
}

export interface DownloadOptions {
  maxBytes: number;
  /** Per attempt, from request to last byte. */
  timeoutMs: number;
  allowInsecure: boolean;
  /** Extra CA certificates (PEM) to trust for https. */
  ca?: string | Buffer;
  /** Attempts in all (default 4). */
  attempts?: number;
  backoff?: BackoffPolicy;
  signal?: AbortSignal;
  onRetry?: (attempt: number, error: ModelDownloadError, delayMs: number) => void;
  /**
   * The URL of the same bytes to use for each new request (a resume, a retry), when it may change
   * while the download runs (a SAS URL signed again); default: `url` throughout. A request running
   * goes on with the URL it started with.
   */
  latestUrl?: () => string;
  /**
   * Where to keep the bytes received so far (and `<partialPath>.json`: which model they are, the
   * server's ETag and Last-Modified), so that a later call for the same model resumes from them
   * with Range, after a restart too; deleted once the download is verified, or its bytes are
   * found not to be the model's. Default: in memory only, for this call.
   */
  partialPath?: string;
}

export type DownloadErrorCode =
  | 'PW_MODEL_URL_INVALID'
  | 'PW_MODEL_TOO_LARGE'
  | 'PW_MODEL_HTTP_STATUS'
  | 'PW_MODEL_URL_EXPIRED'
  | 'PW_MODEL_SIZE_MISMATCH'
  | 'PW_MODEL_SHA256_MISMATCH'
  | 'PW_MODEL_NETWORK'
  | 'PW_MODEL_TLS'
  | 'PW_MODEL_TIMEOUT'
  | 'PW_MODEL_DOWNLOAD_ABORTED';

export class ModelDownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    /** Worth retrying later (network, timeout, 5xx, 408, 429). */
    readonly transient = false,
    /** Refused because of this agent's own settings (size limit, plain http not allowed): may pass once they change. */
    readonly local = false,
    /** The server's Retry-After (ms, trusted up to an hour: lib/retry-after.ts): no new attempt before it. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ModelDownloadError';
  }

  #url: string | null = null;

  /**
   * The URL of the request that failed, when one was made. It holds the query (a SAS token): never
   * shown, and kept off the error's own properties, so that no logger serializes it.
   */
  get url(): string | null {
    return this.#url;
  }

  set url(url: string | null) {
    this.#url = url;
  }
}

/** The URL without query or fragment, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

export function checkModelUrl(url: string, allowInsecure: boolean): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ModelDownloadError('PW_MODEL_URL_INVALID', 'model url is not a valid URL');
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && allowInsecure) return u;
  const insecure = u.protocol === 'http:';
  const why = insecure ? ' (plain http:// needs PUMPWATCH_ALLOW_INSECURE_MODEL_URLS=1)' : '';
  throw new ModelDownloadError('PW_MODEL_URL_INVALID', `model url ${safeUrl(url)} must use https://${why}`, false, insecure);
}

interface Progress {
  chunks: Buffer[];
  received: number;
  hash: Hash;
  /** What the server called the bytes received (a resume is taken only onto the same). */
  validators: Validators;
  /** The bytes kept on disk as well (DownloadOptions.partialPath). */
  partial: PartialDownload | null;
  /** Some of the bytes came by resuming (bytes kept by an earlier call, or a Range request of this one). */
  resumed: boolean;
}

/** Thrown when the bytes kept cannot be resumed onto (other validators, another range): asked again from byte 0 at once. */
class StartOver extends Error {}

/** Downloads and verifies one model; resolves with its bytes. */
export async function downloadModel(req: DownloadRequest, opts: DownloadOptions): Promise<Uint8Array> {
  checkModelUrl(req.url, opts.allowInsecure);
  if (req.size > opts.maxBytes) {
    throw new ModelDownloadError('PW_MODEL_TOO_LARGE', `model is ${req.size} bytes, over the limit of ${opts.maxBytes} bytes`, false, true);
  }
  const progress: Progress = { chunks: [], received: 0, hash: createHash('sha256'), validators: { etag: null, lastModified: null }, partial: null, resumed: false };
  if (opts.partialPath) {
    const kept = await PartialDownload.open(opts.partialPath, req);
    progress.partial = kept.partial;
    if (kept.bytes.length > 0) {
      progress.chunks.push(kept.bytes);
      progress.received = kept.bytes.length;
      progress.hash.update(kept.bytes);
      progress.validators = kept.validators;
      progress.resumed = true;
    }
  }
  const keptBefore = progress.received;
  try {
    if (progress.received < req.size || keptBefore === 0) await fetchWithRetries(req, opts, progress);
    let wrong = verify(progress, req);
    if (wrong && progress.resumed) {
      // Bytes joined onto others (kept by an earlier call, or by a cut request of this one), and the
      // whole is not the model: never trusted again; once more from byte 0, in one piece. A server
      // that drops validators may resume onto other bytes: that was refused for good before.
      startOver(progress);
      await fetchWithRetries(req, opts, progress);
      wrong = verify(progress, req);
    }
    if (wrong) throw wrong;
    await progress.partial?.discard();
    return Buffer.concat(progress.chunks, progress.received);
  } catch (err) {
    // Bytes that are not the model's are not kept for a next try; a cut connection, a timeout or a refused URL keep them.
    const code = err instanceof ModelDownloadError ? err.code : null;
    if (code === 'PW_MODEL_SIZE_MISMATCH' || code === 'PW_MODEL_SHA256_MISMATCH' || code === 'PW_MODEL_TOO_LARGE') await progress.partial?.discard();
    throw err;
  } finally {
    await progress.partial?.close();
  }
}

/** Requests until the server has sent the whole answer, with retries and backoff; appends to `progress`. */
async function fetchWithRetries(req: DownloadRequest, opts: DownloadOptions, progress: Progress): Promise<void> {
  const attempts = opts.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    const href = opts.latestUrl?.() ?? req.url;
    try {
      await fetchOnce(checkModelUrl(href, opts.allowInsecure), req, opts, progress);
      return;
    } catch (err) {
      if (err instanceof StartOver && !opts.signal?.aborted) {
        // The server's bytes are not those kept (or not from where they stop): asked again from byte 0, not counted as an attempt.
        attempt--;
        continue;
      }
      const e = toDownloadError(err, href);
      e.url ??= href;
      if (opts.signal?.aborted) throw e;
      // A refusal of a URL replaced meanwhile says nothing of the new one: asked at once, from where the bytes stopped.
      if (!e.transient && isUrlRefusal(e) && (opts.latestUrl?.() ?? href) !== href) {
        attempt--;
        continue;
      }
      if (!e.transient || attempt >= attempts) throw e;
      const policy = opts.backoff ?? DEFAULT_BACKOFF;
      // Waiting longer than the backoff cap here would hold a download slot: the caller retries later.
      if (e.retryAfterMs !== null && e.retryAfterMs > policy.capMs) throw e;
      const delay = Math.max(backoffDelay(policy, attempt), e.retryAfterMs ?? 0);
      opts.onRetry?.(attempt, e, delay);
      await sleep(delay, opts.signal).catch(() => {
        throw new ModelDownloadError('PW_MODEL_DOWNLOAD_ABORTED', 'download cancelled (a newer desired model replaced it)');
      });
    }
  }
}

/** Why the bytes received are not the model the entry names, or null when they are. */
function verify(progress: Progress, req: DownloadRequest): ModelDownloadError | null {
  if (progress.received !== req.size) {
    return new ModelDownloadError('PW_MODEL_SIZE_MISMATCH', `downloaded ${progress.received} bytes, the desired entry says ${req.size}`);
  }
  const digest = progress.hash.copy().digest('hex');
  if (digest !== req.sha256.toLowerCase()) {
    return new ModelDownloadError('PW_MODEL_SHA256_MISMATCH', `sha256 of the download is ${digest}, the desired entry says ${req.sha256.toLowerCase()}`);
  }
  return null;
}

/** Forgets the bytes received (in memory and on disk) for an answer from byte 0 that `validators` describe. */
function startOver(progress: Progress, validators: Validators = { etag: null, lastModified: null }): void {
  progress.resumed = false;
  progress.chunks = [];
  progress.received = 0;
  progress.hash = createHash('sha256');
  progress.validators = validators;
  progress.partial?.restart(validators);
}

/** One HTTP exchange; appends to `progress` (resuming with Range when bytes were already received). */
function fetchOnce(url: URL, req: DownloadRequest, opts: DownloadOptions, progress: Progress, redirects = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    if (progress.received > 0) {
      progress.resumed = true;
      headers.range = `bytes=${progress.received}-`;
      // A server that knows the bytes changed since answers the whole file (200) instead of the rest.
      const ifRange = strongEtag(progress.validators.etag) ?? progress.validators.lastModified;
      if (ifRange) headers['if-range'] = ifRange;
    }
    const lib = url.protocol === 'https:' ? https : http;
    let timedOut = false;
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      reject(timedOut ? new ModelDownloadError('PW_MODEL_TIMEOUT', `no complete answer from ${safeUrl(url.href)} within ${opts.timeoutMs} ms`, true) : err);
    };
    const request = lib.get(url, { headers, ca: url.protocol === 'https:' ? opts.ca : undefined, signal: opts.signal }, (res) => {
      handleResponse(res, url, req, opts, progress, redirects).then(() => {
        clearTimeout(timer);
        resolve();
      }, fail);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      request.destroy();
    }, opts.timeoutMs);
    request.on('error', fail);
  });
}

async function handleResponse(res: IncomingMessage, url: URL, req: DownloadRequest, opts: DownloadOptions, progress: Progress, redirects: number): Promise<void> {
  const status = res.statusCode ?? 0;
  if ([301, 302, 303, 307, 308].includes(status) && res.headers.location && redirects < 3) {
    res.resume();
    const next = checkModelUrl(new URL(res.headers.location, url).href, opts.allowInsecure);
    return fetchOnce(next, req, opts, progress, redirects + 1);
  }
  if ((status === 206 || status === 416) && progress.received > 0) {
    // 416: the server has no bytes from there (its file is shorter than those kept): not those kept either.
    if (status === 416 || !resumable(res, progress, req)) {
      // Not the rest of the bytes kept (another range, other validators, another total size): they are dropped.
      res.destroy();
      startOver(progress);
      throw new StartOver();
    }
    // resuming: keep what we have
  } else if (status === 200) {
    // The whole file, asked for or not (a server that ignores Range, or whose bytes changed since): from byte 0.
    startOver(progress, validatorsOf(res));
  } else {
    // The body is not read: a proxy may fill it with the request URL, SAS token included.
    res.resume();
    throw statusError(res, url);
  }
  const limit = Math.min(opts.maxBytes, req.size);
  const length = Number(res.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(length) && progress.received + length > limit) {
    res.destroy();
    throw tooLarge(progress.received + length, req.size, opts.maxBytes);
  }
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (progress.received + chunk.length > limit) {
      res.destroy();
      throw tooLarge(progress.received + chunk.length, req.size, opts.maxBytes);
    }
    progress.chunks.push(chunk);
    progress.received += chunk.length;
    progress.hash.update(chunk);
    progress.partial?.append(chunk);
  }
  if (!res.complete) throw new ModelDownloadError('PW_MODEL_NETWORK', `connection to ${safeUrl(url.href)} closed after ${progress.received} bytes`, true);
}

/**
 * A refusal by status. A 401/403 of a URL whose SAS expired by the gateway's clock gets a code of its
 * own: Blob Storage calls it only `AuthenticationFailed`, like a wrong signature, yet the fix is a
 * freshly signed URL (a gateway offline longer than the 7 days a trainer's URL lasts sees it). It is
 * as permanent as any 4xx: the same URL never works again, a new desired entry is tried.
 */
function statusError(res: IncomingMessage, url: URL): ModelDownloadError {
  const status = res.statusCode ?? 0;
  const transient = status >= 500 || status === 408 || status === 429;
  const retryAfterMs = transient ? parseRetryAfter(res.headers['retry-after']) : null;
  const code = serviceCode(res.headers['x-ms-error-code']);
  // a redirect still answered after the 3 followed (a loop, most often) is said so, not as a bare 302
  const redirected = [301, 302, 303, 307, 308].includes(status) && res.headers.location ? ': a redirect after 3 followed (too many redirects, or a loop)' : '';
  const answered = `${safeUrl(url.href)} answered HTTP ${status}${code ? ` (${code})` : ''}${redirected}`;
  const expiry = status === 401 || status === 403 ? sasExpiry(url) : null;
  if (expiry !== null && expiry <= Date.now()) {
    // What happened and what to do come first: the twin's reported `error` keeps only the start of a reason.
    return new ModelDownloadError('PW_MODEL_URL_EXPIRED', `the model URL's signature expired at ${isoSeconds(expiry)} (its "se"); ${FRESH_URL_ADVICE}: ${answered}`);
  }
  const valid = expiry !== null ? `; its signature is valid until ${isoSeconds(expiry)} (its "se"), so it has not expired` : '';
  return new ModelDownloadError('PW_MODEL_HTTP_STATUS', `${answered}${valid}`, transient, false, retryAfterMs);
}

/** The advice in a PW_MODEL_URL_EXPIRED message; a caller that knows the desired key adds the command to it. */
export const FRESH_URL_ADVICE = 'deploy the model again for a fresh URL';

/** Blob Storage's error code (`AuthenticationFailed`, `BlobNotFound`…); anything else a server sends there is left out. */
function serviceCode(header: string | string[] | undefined): string | null {
  const v = (Array.isArray(header) ? header[0] : header)?.trim();
  return v && /^[A-Za-z0-9._-]{1,64}$/.test(v) ? v : null;
}

/** The signed expiry (`se`) of a SAS URL in ms, or null. Only `se` is read: the rest of the query holds the signature. */
function sasExpiry(url: URL): number | null {
  const se = url.searchParams.get('se');
  // The ISO 8601 forms Azure accepts (a date, or a time with its zone); Date.parse alone takes "1" for 2001.
  if (!se || !/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(se)) return null;
  const at = Date.parse(se);
  return Number.isNaN(at) ? null : at;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function tooLarge(seen: number, declared: number, maxBytes: number): ModelDownloadError {
  return seen > maxBytes
    ? new ModelDownloadError('PW_MODEL_TOO_LARGE', `download exceeds the limit of ${maxBytes} bytes`, false, true)
    : new ModelDownloadError('PW_MODEL_SIZE_MISMATCH', `download is larger than the ${declared} bytes the desired entry states`);
}

/** What a URL answered (a status, an expired signature, an invalid URL), as opposed to what the bytes were. */
function isUrlRefusal(e: ModelDownloadError): boolean {
  return e.code === 'PW_MODEL_HTTP_STATUS' || e.code === 'PW_MODEL_URL_EXPIRED' || e.code === 'PW_MODEL_URL_INVALID';
}

/** A 206 that is the rest of the bytes received: from where they stop, of a file of the model's size, under the same validators. */
function resumable(res: IncomingMessage, progress: Progress, req: DownloadRequest): boolean {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
  if (!m || Number(m[1]) !== progress.received || (m[2] !== '*' && Number(m[2]) !== req.size)) return false;
  const now = validatorsOf(res);
  const kept = progress.validators;
  if (kept.etag !== null && now.etag !== null && kept.etag !== now.etag) return false;
  return !(kept.lastModified !== null && now.lastModified !== null && kept.lastModified !== now.lastModified);
}

function validatorsOf(res: IncomingMessage): Validators {
  const h = (v: string | string[] | undefined): string | null => (typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : null);
  return { etag: h(res.headers.etag), lastModified: h(res.headers['last-modified']) };
}

/** If-Range takes only a strong ETag. */
function strongEtag(etag: string | null): string | null {
  return etag !== null && !etag.startsWith('W/') ? etag : null;
}

function toDownloadError(err: unknown, href: string): ModelDownloadError {
  if (err instanceof ModelDownloadError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.name === 'AbortError') return new ModelDownloadError('PW_MODEL_DOWNLOAD_ABORTED', 'download cancelled (a newer desired model replaced it)');
  const code = String(e.code ?? '');
  const tls = /CERT|TLS|SSL|SELF_SIGNED|VERIFY|ISSUER/i.test(code);
  // A certificate the agent does not trust will not fix itself: refused, not retried. One outside its
  // validity dates by the gateway's clock may: a clock set by NTP after a wrong boot, a certificate renewed.
  const dates = CERT_DATES[code];
  const detail = dates ? `${code} (${dates})` : (e.code ?? e.message);
  return new ModelDownloadError(tls ? 'PW_MODEL_TLS' : 'PW_MODEL_NETWORK', `cannot download ${safeUrl(href)}: ${detail}`, !tls || dates !== undefined);
}

/** TLS errors about a certificate's validity dates, as the gateway's clock sees them. */
const CERT_DATES: Record<string, string> = {
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet by this gateway's clock",
  CERT_HAS_EXPIRED: "the server's certificate has expired by this gateway's clock",
};
