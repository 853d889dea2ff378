/**
 * HTTPS plumbing for the service REST API (routes in rest-routes.ts): TLS on loopback with the
 * hub's certificate, service SAS checked on every request (`skn=iothubowner`, `sr` = the HostName
 * of the service connection string), a body size cap, JSON responses.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { verifySas } from './sas.js';
import { errorResponse, route, type RestDeps, type RestResponse } from './rest-routes.js';

const MAX_BODY_BYTES = 1024 * 1024;

export interface RestAuth {
  keyBase64: string;
  keyName: string;
  /** The HostName clients put in the service connection string; `sr` of their tokens. */
  resource(): string;
}

export class HubRestServer {
  private server: https.Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly tlsMaterial: { key: string; cert: string },
    private readonly auth: RestAuth,
    private readonly deps: RestDeps,
  ) {}

  async start(port: number): Promise<number> {
    const server = https.createServer({ key: this.tlsMaterial.key, cert: this.tlsMaterial.cert }, (req, res) => {
      this.handle(req, res);
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return send(res, errorResponse(413, 'RequestEntityTooLarge', `body over ${MAX_BODY_BYTES} bytes`));
      const check = verifySas(req.headers.authorization ?? '', {
        keyBase64: this.auth.keyBase64,
        keyName: this.auth.keyName,
        resource: this.auth.resource(),
      });
      if (!check.ok) return send(res, errorResponse(401, 'IotHubUnauthorizedAccess', `Unauthorized: ${check.reason}`));
      try {
        send(res, route({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, this.deps));
      } catch (err) {
        send(res, errorResponse(500, 'ServerError', (err as Error).message));
      }
    });
  }
}

function send(res: ServerResponse, response: RestResponse): void {
  const body = JSON.stringify(response.body);
  res.writeHead(response.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...response.headers,
  });
  res.end(body);
}
