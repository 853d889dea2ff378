import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import { RepeatLog } from '../repeat-log.js';
import type { AuthFailures } from './auth-failures.js';
import { AuthRefusal, authorize, checkFetchSite, checkOrigin } from './auth.js';
import { HttpError, toHttpError } from './errors.js';
import { checkQueryParameters } from './query.js';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

/** What a handler answers; `stream` handlers write to `res` themselves (server-sent events). */
export type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; body: string | Buffer; contentType: string; headers?: Record<string, string> }
  | { stream: true };

export type Handler = (ctx: RouteContext) => Promise<Reply> | Reply;

interface Route {
  method: string;
  path: string;
  pattern: RegExp;
  names: string[];
  /** Public routes need no token (health probes, the page shell and its static assets). */
  public: boolean;
  handler: Handler;
}

/**
 * The status endpoint: a small router on node:http, or node:https when given a certificate and key
 * (PUMPWATCH_HTTP_TLS_*: the token and the page's traffic cross the gateway's LAN). Routes are
 * added by the parts that own them (core status, readings, page, labels); authentication and error
 * mapping happen here only.
 */
export class StatusServer {
  private readonly routes: Route[] = [];
  private server: Server | HttpsServer | null = null;
  /**
   * Server-side failures per route and error code. An outage answers every request the same way
   * (the buffer full: each POST /readings gets 507, ten a second from one sensor client): one
   * line, then a count a minute, so the lines that explain the outage are not rotated away.
   */
  private readonly failures = new Map<Route, Map<string, RepeatLog>>();

  /** Headers of every answer (SECURITY_HEADERS, with HSTS once listening on HTTPS). */
  private securityHeaders: Record<string, string> = SECURITY_HEADERS;

  constructor(
    private readonly options: { token: string | undefined; logger: Logger; authFailures?: AuthFailures },
  ) {}

  route(method: string, path: string, handler: Handler, opts: { public?: boolean } = {}): void {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, (_m, n: string) => {
        names.push(n);
        return '([^/]+)';
      })}$`,
    );
    this.routes.push({ method, path, pattern, names, public: opts.public ?? false, handler });
  }

  /** Listens on `host`:`port`; with `tls` (PEM certificate chain and key), HTTPS only. */
  async start(host: string, port: number, tls?: { cert: string; key: string }): Promise<AddressInfo> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req, res);
    };
    // A client speaking plain HTTP to the HTTPS port fails its handshake and is closed: no answer in clear.
    this.securityHeaders = tls ? { ...SECURITY_HEADERS, ...HTTPS_HEADERS } : SECURITY_HEADERS;
    const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 120_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // Open streams (server-sent events) would hold close() forever.
      setTimeout(() => server.closeAllConnections(), 1_000).unref();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let route: Route | undefined;
    // Set before anything is written, so that every answer has them: JSON, errors, the page, streams.
    for (const [name, value] of Object.entries(this.securityHeaders)) res.setHeader(name, value);
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const matched = this.match(req.method ?? 'GET', url.pathname);
      route = matched.route;
      checkOrigin(req);
      if (!route.public) {
        checkFetchSite(req);
        authorize(req, this.options.token);
        if (route.method === 'GET') checkQueryParameters(route.path, url.searchParams);
      }
      const reply = await route.handler({ req, res, url, params: matched.params });
      if ('stream' in reply) return;
      this.send(res, reply);
      if (reply.status < 500) for (const log of this.failures.get(route)?.values() ?? []) log.succeeded();
    } catch (err) {
      this.sendError(req, res, err, route);
    }
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      for (const [i, n] of route.names.entries()) {
        const decoded = decodePathSegment(m[i + 1]!);
        // A malformed escape (`%E0%A4`) names no pump and no endpoint: a client error, answered before the token check.
        if (decoded === null) throw new HttpError(404, 'PW_NOT_FOUND', `no such endpoint: ${pathname} (malformed %-escape)`);
        params[n] = decoded;
      }
      return { route, params };
    }
    if (pathMatched) throw new HttpError(405, 'PW_METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}`);
    throw new HttpError(404, 'PW_NOT_FOUND', `no such endpoint: ${pathname}`);
  }

  private logFailure(e: HttpError, err: unknown, req: IncomingMessage, route: Route | undefined): void {
    const fields = { err, code: e.code, path: req.url?.split('?')[0] };
    if (e.code === 'PW_INTERNAL' || route === undefined) this.options.logger.error(fields, 'request failed');
    else failureLog(this.failures, route, e.code, this.options.logger).failed(fields);
  }

  private send(res: ServerResponse, reply: Exclude<Reply, { stream: true }>): void {
    const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers };
    if ('json' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(reply.json));
    } else {
      res.writeHead(reply.status, { 'content-type': reply.contentType, ...headers });
      res.end(reply.body);
    }
  }

  private sendError(req: IncomingMessage, res: ServerResponse, err: unknown, route: Route | undefined): void {
    const e = toHttpError(err, req.method);
    if (e.status >= 500) this.logFailure(e, err, req, route);
    if (e instanceof AuthRefusal && route !== undefined) this.options.authFailures?.record(e.reason, req.socket.remoteAddress ?? 'unknown', `${route.method} ${route.path}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
    if (e.extra.wwwAuthenticate) headers['www-authenticate'] = 'Bearer realm="pumpwatch"';
    if (typeof e.extra.retryAfterSeconds === 'number') headers['retry-after'] = String(e.extra.retryAfterSeconds);
    // A body not read to its end (over the limit, stalled, or refused before reading: 401, 403,
    // 404): close the connection rather than drain it, or a client could stream for minutes; but
    // only after a short linger (lingerThenClose), so that a client still writing reads the answer.
    const unread = !req.complete && hasBody(req);
    if (unread) headers.connection = 'close';
    res.writeHead(e.status, headers);
    const { wwwAuthenticate: _w, retryAfterSeconds: _r, ...extra } = e.extra;
    res.end(JSON.stringify({ code: e.code, error: e.message, ...extra }));
    if (unread) res.once('finish', () => lingerThenClose(req));
  }
}

/**
 * `nosniff` on every answer: a browser must not take a JSON answer (whose strings a client may
 * have put there: a label's note, a pump id) for HTML or script by sniffing its bytes.
 */
const SECURITY_HEADERS: Record<string, string> = { 'x-content-type-options': 'nosniff' };
/**
 * HSTS on HTTPS answers only (a browser ignores it over plain HTTP). A day: a browser that saw the
 * gateway over HTTPS goes on asking it over HTTPS (no answer in clear to strip), but a gateway
 * taken back to plain HTTP, or whose certificate lapsed (HSTS makes a certificate error one that
 * cannot be clicked through), is reachable again a day later, not months. No includeSubDomains:
 * the gateway is addressed by IP (where browsers ignore HSTS) or by a local name, and the names
 * under that one are other devices, many of them plain HTTP, which are not this gateway's to bind.
 */
const HTTPS_HEADERS: Record<string, string> = { 'strict-transport-security': 'max-age=86400' };

/**
 * How long, and how many bytes of its body, a connection whose body was not read is still read
 * (and dropped) after its answer, before it is closed. Closed at once, the client's next write
 * made the kernel reset the connection, and a reset loses the answer the client has not read yet:
 * 56 of 300 chunked clients refused under budget pressure saw ECONNRESET instead of the 503 that
 * tells them to retry (2026-12-07). The bounds keep the linger short: a client cannot stream on.
 */
const LINGER_MS = 2_000;
const LINGER_BYTES = 1 << 20;

function lingerThenClose(req: IncomingMessage): void {
  const socket = req.socket;
  // node:http ends a `connection: close` answer with socket.destroySoon(), which destroys the
  // socket once its last bytes are sent; the linger takes over that destroy (if a later Node no
  // longer schedules it so, removing nothing, the socket still closes below).
  socket.removeListener('finish', socket.destroy);
  const close = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  let read = 0;
  // The body's bytes, dropped as they come (this listener also sets the request flowing again).
  req.on('data', (d: Buffer) => {
    read += d.length;
    if (read > LINGER_BYTES) close();
  });
  req.once('end', close);
  socket.once('close', () => clearTimeout(timer));
}

/**
 * An internal error (a bug) is logged every time; the answers of an outage (503, 507: the buffer
 * down or full) go through the route's RepeatLog for their code.
 */
function failureLog(failures: Map<Route, Map<string, RepeatLog>>, route: Route, code: string, logger: Logger): RepeatLog {
  let byCode = failures.get(route);
  if (!byCode) failures.set(route, (byCode = new Map()));
  let log = byCode.get(code);
  if (!log) {
    log = new RepeatLog({
      failure: (fields, msg) => logger.error(fields, msg),
      recovery: (fields, msg) => logger.info(fields, msg),
      message: `request failed: ${code}`,
      recovered: `${route.method} ${route.path} answers again`,
    });
    byCode.set(code, log);
  }
  return log;
}

/** Whether the request announced a body (a request without one is complete once its headers are). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
