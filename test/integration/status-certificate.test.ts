/**
 * The status endpoint's certificate while the agent runs: a real short-lived self-signed
 * certificate served over HTTPS by a real agent, its clock injected and moved to the days before
 * and after the certificate's expiry, the scheduler's tick run by the test; /status, /healthz,
 * the log, and the technician's page in Chromium (playwright-core) say what a browser will do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { httpsRequest } from '../support/https.js';

const DAY = 86_400_000;
let dir: string;
let cert: string;
let validTo: Date;
let t: TestAgent;
let browser: Browser;
const clock = { now: Date.now() };
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-cert-'));
  // Self-signed, for the loopback address, valid for 20 days from yesterday.
  const start = new Date(Math.floor(Date.now() / 1000) * 1000 - DAY);
  validTo = new Date(start.getTime() + 21 * DAY);
  const made = await generate([{ name: 'commonName', value: 'gw-cert-test' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: start,
    notAfterDate: validTo,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7 as const, ip: '127.0.0.1' }] },
    ],
  });
  cert = made.cert;
  writeFileSync(join(dir, 'cert.pem'), made.cert);
  writeFileSync(join(dir, 'key.pem'), made.private);
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  t = await startTestAgent({ PUMPWATCH_HTTP_TLS_CERT_FILE: join(dir, 'cert.pem'), PUMPWATCH_HTTP_TLS_KEY_FILE: join(dir, 'key.pem') }, { clock: () => clock.now, logger });
  await t.agent.scheduler.stop(); // the test runs the hourly tick itself
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const get = async (path: string) => JSON.parse((await httpsRequest(`${t.url}${path}`, { ca: cert })).text) as Record<string, any>;
/** The log lines about the certificate, as [level, message]. */
const said = () => lines.filter((l) => l.component === 'http' && /certificate/.test(String(l.msg))).map((l) => [l.level, l.msg]);

/** The Health line of the page's Gateway card, as a technician's browser shows it. */
async function pageHealth(): Promise<string> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the browser is not given the test's certificate
  try {
    const page = await context.newPage();
    await page.goto(`${t.url}/`);
    const dd = page.locator('#gateway dt', { hasText: 'Health' }).locator('xpath=following-sibling::dd[1]');
    await dd.waitFor();
    return (await dd.textContent()) ?? '';
  } finally {
    await context.close();
  }
}

describe("the status endpoint's certificate while the agent runs", () => {
  it('answers over HTTPS with Strict-Transport-Security (a day, no includeSubDomains) and nosniff, on data, health, error and page answers', async () => {
    for (const path of ['/status', '/healthz', '/nowhere', '/']) {
      const { headers } = await httpsRequest(`${t.url}${path}`, { ca: cert });
      expect(headers['strict-transport-security']).toBe('max-age=86400');
      expect(headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('says its validity in /status, and in the log once at start', async () => {
    const status = await get('/status');
    expect(status.tls).toEqual({ subject: 'CN=gw-cert-test', validFrom: expect.any(String), validTo: validTo.toISOString(), state: 'valid', expiresInDays: expect.closeTo(20, 0) });
    expect((await get('/healthz')).checks['http-tls']).toBe('ok');
    expect(said()).toEqual([[30, 'status endpoint certificate']]);
  });

  it('warns once when it comes within 14 days of its expiry, in /status, /healthz and on the page', async () => {
    clock.now = validTo.getTime() - 10 * DAY;
    t.agent.certificateWatch.check();
    t.agent.certificateWatch.check(); // the next tick: nothing new to say
    const soon = `the status endpoint's certificate expires at ${validTo.toISOString()} (in 10.0 days): browsers refuse it from then on; replace PUMPWATCH_HTTP_TLS_CERT_FILE and PUMPWATCH_HTTP_TLS_KEY_FILE and restart before`;
    expect(said()).toEqual([[30, 'status endpoint certificate'], [40, soon]]);
    expect((await get('/status')).tls).toMatchObject({ validTo: validTo.toISOString(), state: 'expires-soon', expiresInDays: 10 });
    const health = await get('/healthz');
    expect(health).toMatchObject({ status: 'degraded', degraded: ['http-tls'], checks: { 'http-tls': soon } });
    expect(await pageHealth()).toBe(`running, degraded: ${soon}`);
  });

  it('says once that it expired, while the agent runs on', async () => {
    clock.now = validTo.getTime() + 1.5 * DAY;
    t.agent.certificateWatch.check();
    t.agent.certificateWatch.check();
    const expired = `the status endpoint's certificate expired at ${validTo.toISOString()}: browsers refuse it; replace PUMPWATCH_HTTP_TLS_CERT_FILE and PUMPWATCH_HTTP_TLS_KEY_FILE and restart`;
    expect(said().slice(2)).toEqual([[40, expired]]);
    expect((await get('/status')).tls).toMatchObject({ state: 'expired', expiresInDays: -1.5 });
    expect((await get('/healthz')).checks['http-tls']).toBe(expired);
  });
});
