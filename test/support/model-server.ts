/**
 * A real model download server on 127.0.0.1 (port 0) for hot-swap tests: plain HTTP, or HTTPS
 * with a self-signed CA made at start-up (optionally with a server certificate not valid yet, as a
 * gateway whose clock is behind sees it, replaced by a valid one on demand). Serves registered files with Range support, and can
 * misbehave on purpose: answer a status (with Blob Storage's error code and body), refuse a SAS URL
 * whose `se` has passed as Blob Storage does, send fewer bytes than promised, cut the connection
 * half-way once, stream more than it announced, or hang half-way.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { makeTlsMaterial } from '../../agent/local-hub/certs.js';

export type Behaviour =
  | { kind: 'ok' }
  /**
   * Answers `status` (with `retryAfter` as its Retry-After header, `errorCode` as Blob Storage's
   * x-ms-error-code and XML body), to the first `times` requests only when given.
   */
  | { kind: 'status'; status: number; retryAfter?: string; times?: number; errorCode?: string }
  /** Blob Storage with a SAS URL: 403 AuthenticationFailed once the query's `se` has passed (by this machine's clock), else the file. */
  | { kind: 'sas' }
  /** Sends only the first `bytes` bytes, with a matching Content-Length. */
  | { kind: 'truncate'; bytes: number }
  /** The first request sends `bytes` bytes of a full-length response, then cuts the connection. */
  | { kind: 'drop-once'; bytes: number }
  /** Streams the file then `extra` more bytes, without Content-Length. */
  | { kind: 'overflow'; extra: number }
  /** Sends the headers and the first 10 bytes, then nothing more until the client gives up. */
  | { kind: 'hang' }
  /**
   * The first request gets the headers and the first `bytes` bytes, then waits for `open(name)`:
   * then it gets the rest (`then: 'send'`) or its connection is cut (`then: 'drop'`). Later
   * requests are served as usual (with Range).
   */
  | { kind: 'gate'; bytes: number; then: 'send' | 'drop' }
  /**
   * A slow link that keeps failing: each of the first `drops` requests gets at most `bytes` bytes
   * (from where its Range starts), then its connection is cut; later ones are served whole. With
   * `ignoreRange`, every answer is a 200 from byte 0, as a server without Range support sends.
   */
  | { kind: 'drip'; bytes: number; drops: number; ignoreRange?: boolean }
  /**
   * A server (or proxy) that drops validators: the first request gets `bytes` bytes of a
   * full-length 200 without an ETag, then its connection is cut; the second, a Range request, a
   * 206 with the right Content-Range but other bytes (a stale copy); later ones are served as usual.
   */
  | { kind: 'stale-resume'; bytes: number };

interface Entry {
  bytes: Uint8Array;
  behaviour: Behaviour;
  dropped: boolean;
  /** Requests answered so far. */
  served: number;
}

export class ModelServer {
  private readonly files = new Map<string, Entry>();
  /** Every request: its path, Range header and `sig` (the signature a SAS URL carries), and its If-Range header when it has one. */
  readonly requests: Array<{ path: string; range: string | null; sig: string | null; ifRange?: string }> = [];
  /** Gated responses holding at their first bytes, by path (see Behaviour 'gate'). */
  private readonly gates = new Map<string, () => void>();
  private readonly hangs = new Set<ServerResponse>();

  private constructor(
    private readonly server: http.Server | https.Server,
    readonly baseUrl: string,
    /** CA to trust for https (null for http). */
    readonly ca: string | null,
  ) {}

  /** With `certValidFrom`: https whose server certificate is valid only from that date (see `useValidCertificate`). */
  static async start(opts: { https?: boolean; certValidFrom?: Date } = {}): Promise<ModelServer> {
    let ca: string | null = null;
    let issue: ModelServer['issue'] = null;
    let server: http.Server | https.Server;
    if (opts.certValidFrom) {
      const authority = await makeAuthority();
      ca = authority.ca;
      issue = authority.issue;
      server = https.createServer(await issue(opts.certValidFrom));
    } else if (opts.https) {
      const tls = await makeTlsMaterial();
      ca = tls.ca;
      server = https.createServer({ key: tls.key, cert: tls.cert });
    } else {
      server = http.createServer();
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const holder = new ModelServer(server, `${ca === null ? 'http' : 'https'}://127.0.0.1:${port}`, ca);
    holder.issue = issue;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => holder.handle(req, res));
    return holder;
  }

  private issue: ((validFrom: Date) => Promise<{ key: string; cert: string }>) | null = null;

  /** A server started with `certValidFrom` gets a certificate valid from now on (new connections use it). */
  async useValidCertificate(): Promise<void> {
    if (!this.issue) throw new Error('useValidCertificate needs a server started with certValidFrom');
    (this.server as https.Server).setSecureContext(await this.issue(new Date(Date.now() - 60_000)));
  }

  /** Serves `bytes` at `/models/<name>`; returns the desired entry that points at it. */
  add(name: string, bytes: Uint8Array, version: string, behaviour: Behaviour = { kind: 'ok' }): { version: string; url: string; sha256: string; size: number } {
    this.files.set(`/models/${name}`, { bytes, behaviour, dropped: false, served: 0 });
    return { version, url: `${this.baseUrl}/models/${name}?sv=2024&sig=secret`, sha256: sha256(bytes), size: bytes.length };
  }

  /** Whether the gated first response of `/models/<name>` has sent its first bytes and waits. */
  gated(name: string): boolean {
    return this.gates.has(`/models/${name}`);
  }

  /** Lets the gated first response of `/models/<name>` go on (see Behaviour 'gate'). */
  open(name: string): void {
    const go = this.gates.get(`/models/${name}`);
    if (!go) throw new Error(`no gated response of ${name} is waiting`);
    this.gates.delete(`/models/${name}`);
    go();
  }

  /** Hanging responses whose client has not closed the connection yet. */
  get hanging(): number {
    return this.hangs.size;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const se = new URL(req.url ?? '/', 'http://localhost').searchParams.get('se');
    this.requests.push({ path, range: req.headers.range ?? null, sig: new URL(req.url ?? '/', 'http://localhost').searchParams.get('sig'), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}) });
    const entry = this.files.get(path);
    if (!entry) {
      res.writeHead(404).end('not found');
      return;
    }
    const b = entry.behaviour;
    const body = Buffer.from(entry.bytes);
    const answered = entry.served++;
    if (b.kind === 'status' && (b.times === undefined || answered < b.times)) {
      if (b.errorCode) blobError(res, b.status, b.errorCode, 'The request failed.');
      else res.writeHead(b.status, b.retryAfter ? { 'retry-after': b.retryAfter } : {}).end();
    } else if (b.kind === 'status') this.serveRange(req, res, body);
    else if (b.kind === 'sas' && (se === null || !(Date.parse(se) > Date.now()))) {
      // What Azure answers (its detail names the times, never the signature).
      const detail = `Signed expiry time [${se === null ? 'none' : new Date(Date.parse(se)).toUTCString()}] must be after signed start time [${new Date().toUTCString()}]`;
      blobError(res, 403, 'AuthenticationFailed', 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.', detail);
    } else if (b.kind === 'sas') this.serveRange(req, res, body);
    else if (b.kind === 'truncate') res.writeHead(200, { 'content-length': b.bytes }).end(body.subarray(0, b.bytes));
    else if (b.kind === 'hang') {
      this.hangs.add(res);
      res.on('close', () => this.hangs.delete(res));
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 10));
    } else if (b.kind === 'overflow') {
      res.writeHead(200);
      res.write(body);
      res.end(Buffer.alloc(b.extra, 1));
    } else if (b.kind === 'gate' && answered === 0) {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
      res.write(body.subarray(0, b.bytes));
      this.gates.set(path, () => (b.then === 'send' ? res.end(body.subarray(b.bytes)) : res.destroy()));
    } else if (b.kind === 'drop-once' && !entry.dropped) {
      entry.dropped = true;
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
      res.write(body.subarray(0, b.bytes), () => res.destroy());
    } else if (b.kind === 'stale-resume' && answered === 0) {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
      res.write(body.subarray(0, b.bytes), () => res.destroy());
    } else if (b.kind === 'stale-resume' && answered === 1) {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const stale = Buffer.from(body.subarray(start)).map((x) => x ^ 0xff);
      res.writeHead(206, { 'content-length': stale.length, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
      res.end(stale);
    } else if (b.kind === 'drip') {
      const m = b.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m && Number(m[1]) < body.length ? Number(m[1]) : 0;
      const headers = { 'content-length': body.length - start, etag: etagOf(body), ...(b.ignoreRange ? {} : { 'accept-ranges': 'bytes' }) };
      res.writeHead(start > 0 ? 206 : 200, start > 0 ? { ...headers, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : headers);
      // Closed (FIN) once the bytes are out, as a link that fails part-way: a reset could discard them before the client reads them.
      if (answered < b.drops) res.write(body.subarray(start, start + b.bytes), () => res.socket?.end());
      else res.end(body.subarray(start));
    } else this.serveRange(req, res, body);
  }

  private serveRange(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (m && start < body.length) {
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' }).end(body);
  }
}

/** An error answer as Blob Storage sends it: x-ms-error-code and an XML body. */
function blobError(res: ServerResponse, status: number, code: string, message: string, detail?: string): void {
  const extra = detail ? `<AuthenticationErrorDetail>${detail}</AuthenticationErrorDetail>` : '';
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:00000000-0000-0000-0000-000000000000\nTime:${new Date().toISOString()}</Message>${extra}</Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': '00000000-0000-0000-0000-000000000000' }).end(body);
}

/** A strong ETag of the bytes, as Blob Storage gives one per blob version. */
const etagOf = (bytes: Uint8Array): string => `"0x${sha256(bytes).slice(0, 16).toUpperCase()}"`;

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A throw-away CA that issues loopback server certificates valid from a given date, for a week after it. */
async function makeAuthority(): Promise<{ ca: string; issue: (validFrom: Date) => Promise<{ key: string; cert: string }> }> {
  const week = 7 * 24 * 3600 * 1000;
  const root = await generate([{ name: 'commonName', value: 'PumpWatch model server test CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - week),
    notAfterDate: new Date(Date.now() + 4 * week),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const issue = async (validFrom: Date): Promise<{ key: string; cert: string }> => {
    const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: validFrom,
      notAfterDate: new Date(validFrom.getTime() + week),
      ca: { key: root.private, cert: root.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 7 as const, ip: '127.0.0.1' }, { type: 2 as const, value: 'localhost' }] },
      ],
    });
    return { key: leaf.private, cert: leaf.cert };
  };
  return { ca: root.cert, issue };
}
