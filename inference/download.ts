/**
 * Model download: HTTPS (plain HTTP only when allowed, for development and tests), a size limit
 * checked before and while reading, a timeout per attempt, sha256 computed while the bytes arrive,
 * and retries with backoff that resume with a Range request when the server supports it.
 * Permanent failures (a 4xx, too large, wrong size or hash) are never retried; a server's
 * Retry-After is waited for, or handed to the caller when it is longer than the backoff cap.
 * Messages name the URL without its query string (it may hold a SAS token).
 */
import { createHash, type Hash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { backoffDelay, sleep, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';

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
}

export type DownloadErrorCode =
  | 'PW_MODEL_URL_INVALID'
  | 'PW_MODEL_TOO_LARGE'
  | 'PW_MODEL_HTTP_STATUS'
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
    /** The server's Retry-After (ms): no new attempt before it. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ModelDownloadError';
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
}

/** Downloads and verifies one model; resolves with its bytes. */
export async function downloadModel(req: DownloadRequest, opts: DownloadOptions): Promise<Uint8Array> {
  const url = checkModelUrl(req.url, opts.allowInsecure);
  if (req.size > opts.maxBytes) {
    throw new ModelDownloadError('PW_MODEL_TOO_LARGE', `model is ${req.size} bytes, over the limit of ${opts.maxBytes} bytes`, false, true);
  }
  const attempts = opts.attempts ?? 4;
  const progress: Progress = { chunks: [], received: 0, hash: createHash('sha256') };
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchOnce(url, req, opts, progress);
      break;
    } catch (err) {
      const e = toDownloadError(err, url.href);
      if (!e.transient || attempt >= attempts || opts.signal?.aborted) throw e;
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
  if (progress.received !== req.size) {
    throw new ModelDownloadError('PW_MODEL_SIZE_MISMATCH', `downloaded ${progress.received} bytes, the desired entry says ${req.size}`);
  }
  const digest = progress.hash.digest('hex');
  if (digest !== req.sha256.toLowerCase()) {
    throw new ModelDownloadError('PW_MODEL_SHA256_MISMATCH', `sha256 of the download is ${digest}, the desired entry says ${req.sha256.toLowerCase()}`);
  }
  return Buffer.concat(progress.chunks, progress.received);
}

/** One HTTP exchange; appends to `progress` (resuming with Range when bytes were already received). */
function fetchOnce(url: URL, req: DownloadRequest, opts: DownloadOptions, progress: Progress, redirects = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    if (progress.received > 0) headers.range = `bytes=${progress.received}-`;
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
  if (status === 206 && progress.received > 0 && contentRangeStart(res) === progress.received) {
    // resuming: keep what we have
  } else if (status === 200) {
    progress.chunks = [];
    progress.received = 0;
    progress.hash = createHash('sha256');
  } else {
    res.resume();
    const transient = status >= 500 || status === 408 || status === 429;
    const retryAfterMs = transient ? parseRetryAfter(res.headers['retry-after']) : null;
    throw new ModelDownloadError('PW_MODEL_HTTP_STATUS', `${safeUrl(url.href)} answered HTTP ${status}`, transient, false, retryAfterMs);
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
  }
  if (!res.complete) throw new ModelDownloadError('PW_MODEL_NETWORK', `connection to ${safeUrl(url.href)} closed after ${progress.received} bytes`, true);
}

function tooLarge(seen: number, declared: number, maxBytes: number): ModelDownloadError {
  return seen > maxBytes
    ? new ModelDownloadError('PW_MODEL_TOO_LARGE', `download exceeds the limit of ${maxBytes} bytes`, false, true)
    : new ModelDownloadError('PW_MODEL_SIZE_MISMATCH', `download is larger than the ${declared} bytes the desired entry states`);
}

/** Milliseconds from a Retry-After header (seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  const v = value?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function contentRangeStart(res: IncomingMessage): number {
  const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
  return m ? Number(m[1]) : -1;
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
