/**
 * An HTTP proxy in front of a real Azurite, for the failures Azurite itself never shows: each
 * request is forwarded, answered with an error status of Blob Storage's (a 503 ServerBusy), or
 * held (accepted, never answered: a middlebox that keeps the connection while answers stop).
 * Or forwarded with its answer lost (the service did the work, the client never hears it: a
 * connection that dropped after the request went through).
 * Every request is recorded (method and path), so a test can count what a client asked for.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';

/** A request as the proxy saw it: `path` is the URL path, decoded (`/devstoreaccount1/c/readings/…`), `query` its query. */
export interface ProxiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
}

/** What to do with a request: forward it, hold it for good, forward it and hold its answer for good, or answer with this status. */
export type ProxyAction = 'forward' | 'hold' | 'lose-answer' | number;

export interface BlobProxy {
  readonly port: number;
  /** A connection string for the devstore account through the proxy. */
  readonly connectionString: string;
  /** Every request so far, in order of arrival. */
  readonly requests: ProxiedRequest[];
  /** Requests held so far. */
  held(): number;
  close(): Promise<void>;
}

export async function startBlobProxy(targetPort: number, decide: (req: ProxiedRequest) => ProxyAction = () => 'forward'): Promise<BlobProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  let held = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const seen: ProxiedRequest = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), query: url.searchParams };
    requests.push(seen);
    const action = decide(seen);
    if (action === 'hold') {
      held++;
      req.resume(); // read the body, answer nothing
      return;
    }
    if (typeof action === 'number') {
      req.resume();
      const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The proxy of this test answers ${action}.</Message></Error>`;
      res.writeHead(action, { 'content-type': 'application/xml', 'x-ms-error-code': 'ServerBusy', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const up = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (action === 'lose-answer') {
        held++;
        answer.resume();
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', (err) => res.destroy(err));
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${DEVSTORE_ACCOUNT};`,
    requests,
    held: () => held,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
