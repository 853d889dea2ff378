/**
 * Requests the status endpoint refuses for their token or origin, sent over real HTTP to a started
 * agent: a warning per reason, the first and then one line a minute with the count (the agent's
 * monotonic clock moved by the test), with the client's address, the route and why, never the
 * token given; counted on /metrics and /status. And the headers of every answer: nosniff, and no
 * HSTS over plain HTTP (the HTTPS answers' HSTS: status-certificate.test.ts).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';

const TOKEN = 'status-token-7f3a9c21e8b4';
const GUESS = 'guess-5d0e6b19a2c7-not-the-token';
type Line = Record<string, any>;
let t: TestAgent;
let open: TestAgent;
let mono = 1_000_000;
const lines: Line[] = [];
const openLines: Line[] = [];
const auth = { authorization: `Bearer ${TOKEN}` };
const refusals = (from: Line[] = lines) => from.filter((l) => String(l.msg).startsWith('request refused by the access check'));

/** The status and headers of a request, its body read to its end. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** A GET with a Host header of our choosing (fetch sets its own), as a DNS-rebinding page's browser sends it. */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  t = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: TOKEN }, { logger, monotonic: () => mono });
  const openLogger = createLogger('info', { write: (line: string) => void openLines.push(JSON.parse(line) as Line) });
  open = await startTestAgent({}, { logger: openLogger });
});

afterAll(async () => {
  await t?.stop();
  await open?.stop();
});

describe('requests refused by the access checks', () => {
  it('logs the first wrong token, then one line a minute with the count, with the address, route and reason, and counts each on /metrics and /status', async () => {
    for (let i = 0; i < 200; i++) expect((await call(`${t.url}/status`, { headers: { authorization: `Bearer ${GUESS}-${i}` } })).status).toBe(401);
    expect(refusals()).toEqual([
      expect.objectContaining({ level: 40, component: 'http', msg: 'request refused by the access check (wrong-token)', reason: 'wrong-token', remoteAddress: '127.0.0.1', route: 'GET /status' }),
    ]);

    mono += 61_000; // a minute later, the guessing goes on
    expect((await call(`${t.url}/pumps/p-1/predictions`, { headers: { authorization: `Bearer ${GUESS}` } })).status).toBe(401);
    expect(refusals()).toHaveLength(2);
    expect(refusals()[1]).toMatchObject({ msg: 'request refused by the access check (wrong-token) (200 more in the last 61 s)', repeats: 200, failures: 201, route: 'GET /pumps/:pumpId/predictions' });

    // no token at all, and a page of another site with the right one: each reason its own first line
    expect((await call(`${t.url}/readings`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(401);
    expect((await call(`${t.url}/status`, { headers: { ...auth, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect(refusals().slice(2)).toEqual([
      expect.objectContaining({ reason: 'missing-token', route: 'POST /readings', remoteAddress: '127.0.0.1' }),
      expect.objectContaining({ reason: 'cross-origin', route: 'GET /status' }),
    ]);

    const metrics = (await call(`${t.url}/metrics`, { headers: auth })).text;
    expect(metrics).toContain('pumpwatch_http_auth_failures_total{reason="wrong-token"} 201');
    expect(metrics).toContain('pumpwatch_http_auth_failures_total{reason="missing-token"} 1');
    expect(metrics).toContain('pumpwatch_http_auth_failures_total{reason="cross-origin"} 1');
    expect(metrics).toContain('pumpwatch_http_auth_failures_total{reason="not-loopback"} 0');
    const status = JSON.parse((await call(`${t.url}/status`, { headers: auth })).text) as Line;
    expect(status.authFailures).toEqual({
      total: 203,
      byReason: { 'missing-token': 1, 'wrong-token': 201, 'not-loopback': 0, 'host-name': 0, 'cross-origin': 1 },
      last: { at: expect.any(String), reason: 'cross-origin', remoteAddress: '127.0.0.1', route: 'GET /status' },
    });
  });

  it('never writes the token given (nor the configured one) into the log', () => {
    expect(refusals().length).toBeGreaterThan(0); // refusals were logged: the tokens they came with are not
    const log = JSON.stringify(lines);
    expect(log).not.toContain('guess-5d0e6b19a2c7');
    expect(log).not.toContain(TOKEN);
  });

  it('does not count what is not an access check: public routes with a wrong token, unknown routes, a good token', async () => {
    const before = refusals().length;
    expect((await call(`${t.url}/healthz`, { headers: { authorization: `Bearer ${GUESS}` } })).status).toBe(200);
    expect((await call(`${t.url}/no-such-route`, { headers: { authorization: `Bearer ${GUESS}` } })).status).toBe(404);
    expect((await call(`${t.url}/status`, { headers: auth })).status).toBe(200);
    expect(refusals()).toHaveLength(before);
    expect((JSON.parse((await call(`${t.url}/status`, { headers: auth })).text) as Line).authFailures.total).toBe(203);
  });

  it('without a token configured, logs a request addressed by a host name (DNS rebinding) as host-name', async () => {
    expect(await getWithHost(`${open.url}/status`, 'rebound.example.com')).toBe(403);
    expect(refusals(openLines)).toEqual([expect.objectContaining({ level: 40, reason: 'host-name', route: 'GET /status', remoteAddress: '127.0.0.1' })]);
    expect(await (await fetch(`${open.url}/metrics`)).text()).toContain('pumpwatch_http_auth_failures_total{reason="host-name"} 1');
  });
});

describe('the headers of every answer over plain HTTP', () => {
  it('carry X-Content-Type-Options: nosniff (JSON, errors, metrics, the page, the event stream) and no Strict-Transport-Security', async () => {
    const answers = [
      await call(`${t.url}/status`, { headers: auth }),
      await call(`${t.url}/status`),
      await call(`${t.url}/healthz`),
      await call(`${t.url}/nowhere`),
      await call(`${t.url}/metrics`, { headers: auth }),
      await call(`${t.url}/`),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401, 200, 404, 200, 200]);
    for (const a of answers) {
      expect(a.headers.get('x-content-type-options')).toBe('nosniff');
      expect(a.headers.get('strict-transport-security')).toBeNull();
    }
    const events = new AbortController();
    const stream = await fetch(`${open.url}/events`, { signal: events.signal });
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers.get('x-content-type-options')).toBe('nosniff');
    } finally {
      events.abort();
    }
  });
});
