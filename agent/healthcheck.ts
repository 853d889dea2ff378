/**
 * The container's health probe (the Dockerfile's HEALTHCHECK, `node dist/agent/healthcheck.js`):
 * `GET /healthz` of the agent in the same container, over HTTPS when PUMPWATCH_HTTP_TLS_CERT_FILE
 * is set, at the address and port the agent listens on. Exit 0 on 200, else 1; the answer (which
 * names the failing part) is printed, and Docker keeps it in `docker inspect`.
 * The certificate is not verified: the probe reaches the agent by loopback, a name the gateway's
 * certificate need not hold, sends no token, and only asks whether the agent answers.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CONFIG_KEYS } from './config.js';
import { localUrl } from './http/local-url.js';

/** Below the HEALTHCHECK's --timeout=5s, so a hung agent is told as one. */
const TIMEOUT_MS = 4_000;

/** A variable as the agent reads it: set to the empty string counts as unset. */
function setting(key: 'httpHost' | 'httpPort' | 'httpTlsCertFile'): string | undefined {
  const value = process.env[CONFIG_KEYS[key].env];
  return value === '' ? undefined : value;
}

function probe(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const opts = { timeout: TIMEOUT_MS };
    const req = url.startsWith('https:') ? httpsRequest(url, { ...opts, rejectUnauthorized: false }, onResponse) : httpRequest(url, opts, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<number> {
  const host = CONFIG_KEYS.httpHost.schema.parse(setting('httpHost'));
  const port = CONFIG_KEYS.httpPort.schema.parse(setting('httpPort'));
  const url = `${localUrl(host, port, setting('httpTlsCertFile') !== undefined)}healthz`;
  try {
    const { status, body } = await probe(url);
    process.stdout.write(`${url}: ${status} ${body.slice(0, 2000)}\n`);
    return status === 200 ? 0 : 1;
  } catch (err) {
    process.stdout.write(`${url}: ${(err as Error).message}\n`);
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stdout.write(`health probe failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
