/**
 * The status endpoint over HTTPS (PUMPWATCH_HTTP_TLS_CERT_FILE and _KEY_FILE): the agent as a real
 * process with a certificate made in the test by the local hub's CA code, real requests trusting
 * that CA, a technician's Chromium through a TCP relay that records the bytes on the LAN path (as
 * a passive observer would), the container's health probe, and the start-up errors of a
 * certificate or key that cannot be used.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTlsMaterial, type TlsMaterial } from '../../agent/local-hub/certs.js';
import { createLogger } from '../../agent/logger.js';
import { packageRoot } from '../../agent/paths.js';
import { startTestAgent } from '../support/agent.js';
import { httpsRequest } from '../support/https.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const TOKEN = 'a3f1c9e07b5d42e8a61f0c3d9b7e5a214c8d06f2e9b1a7c3';

let dir: string;
let tls: TlsMaterial;
let certFile: string;
let keyFile: string;
let agent: AgentProcess;
let port: number;
let browser: Browser;
/** The agents started to be refused, stopped after the tests if one was not. */
const refused: AgentProcess[] = [];

/** The agent's TLS variables for these files. */
const tlsEnv = (cert: string, key: string) => ({ PUMPWATCH_HTTP_TLS_CERT_FILE: cert, PUMPWATCH_HTTP_TLS_KEY_FILE: key });
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-https-'));
  // A certificate for the gateway's name and the loopback addresses, signed by a CA of the test.
  tls = await makeTlsMaterial(['gateway.test']);
  certFile = write('cert.pem', tls.cert);
  keyFile = write('key.pem', tls.key);
  agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data'), ...tlsEnv(certFile, keyFile), PUMPWATCH_STATUS_TOKEN: TOKEN, PUMPWATCH_SIMULATE: '1', PUMPWATCH_LOG_LEVEL: 'info' }, undefined, { ca: tls.ca });
  await agent.waitReady();
  port = Number(new URL(agent.url).port);
  // gateway.test: the gateway's name on the site's LAN.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP gateway.test 127.0.0.1'] });
});

afterAll(async () => {
  await browser?.close();
  for (const a of [agent, ...refused]) {
    if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) continue;
    a.proc.kill('SIGTERM');
    await a.exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the status endpoint with a certificate and key', () => {
  it('serves HTTPS with that certificate, says so at start-up, and answers nothing in plain HTTP', async () => {
    expect(agent.output()).toContain(`PumpWatch agent running: status page https://127.0.0.1:${port}/ `);
    expect(agent.output()).toContain('"msg":"status endpoint listening (HTTPS)"');
    const health = await httpsRequest(`${agent.url}/healthz`, { ca: tls.ca });
    expect(health.status).toBe(200);
    expect(health.peerFingerprint256).toBe(new X509Certificate(tls.cert).fingerprint256);
    expect((await httpsRequest(`${agent.url}/status`, { ca: tls.ca })).status).toBe(401);
    const status = await httpsRequest(`${agent.url}/status`, { ca: tls.ca, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(status.status).toBe(200);
    expect(JSON.parse(status.text)).toHaveProperty('uptimeSeconds');
    // A client speaking plain HTTP to the port gets no answer at all (the handshake fails).
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it("carries a technician's page, its live stream and a label inside TLS: a relay on the LAN path sees no token", async () => {
    // The LAN path: a TCP relay that keeps every byte the browser sends.
    const wire: Buffer[] = [];
    const relay = net.createServer((c) => {
      const up = net.connect(port, '127.0.0.1');
      c.on('data', (d) => {
        wire.push(d);
        up.write(d);
      });
      up.on('data', (d) => c.write(d));
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
      c.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const lan = `https://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
    // Chromium does not trust the test's CA: the certificate's own check is the test above.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${lan}/`);
      await page.locator('#token').waitFor({ state: 'visible', timeout: 20_000 });
      await page.fill('#token', TOKEN);
      await page.click('#login-form button[type=submit]');
      await page.locator('#pumps button[data-pump="sim-pump-1"]').waitFor({ timeout: 20_000 });
      expect(new URL(page.url()).protocol).toBe('https:');

      // The live stream (server-sent events) through TLS: its hello, then the simulated pump's rows.
      const events = await page.evaluate(async (token) => {
        const res = await fetch('/events', { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        while (!text.includes('event: rows')) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        await reader.cancel();
        return { status: res.status, type: res.headers.get('content-type'), text };
      }, TOKEN);
      expect(events.status).toBe(200);
      expect(events.type).toMatch(/^text\/event-stream/);
      expect(events.text).toContain('event: hello');
      expect(events.text).toContain('"sim-pump-1"');

      // A change from the page itself: its Origin is https://…, the same host as the request's.
      const label = await page.evaluate(async (token) => {
        const res = await fetch('/labels', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ pumpId: 'sim-pump-1', kind: 'maintenance', from: Date.now() - 60_000, to: Date.now(), author: 'tech over https' }),
        });
        return { status: res.status, body: await res.text() };
      }, TOKEN);
      expect(label.status, label.body).toBe(201);
      const stored = await httpsRequest(`${agent.url}/labels?pumpId=sim-pump-1`, { ca: tls.ca, headers: { authorization: `Bearer ${TOKEN}` } });
      expect((JSON.parse(stored.text) as { labels: Array<{ author: string }> }).labels.map((l) => l.author)).toContain('tech over https');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
      await new Promise((resolve) => relay.close(resolve));
    }

    const bytes = Buffer.concat(wire);
    expect(bytes.length).toBeGreaterThan(1000);
    expect(bytes[0]).toBe(0x16); // a TLS handshake record, not "GET / HTTP/1.1"
    const seen = bytes.toString('latin1');
    for (const clear of [TOKEN, 'authorization', 'Bearer', '/labels', 'sim-pump-1', 'tech over https']) expect(seen, clear).not.toContain(clear);
  });

  it('without a token, tells a technician who opened the page by name to open it by loopback over https', async () => {
    const lone = await startTestAgent(tlsEnv(certFile, keyFile));
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const lonePort = new URL(lone.url).port;
      expect(lone.url).toBe(`https://127.0.0.1:${lonePort}`);
      const page = await context.newPage();
      await page.goto(`https://gateway.test:${lonePort}/`);
      const banner = page.locator('#banner');
      await banner.waitFor({ state: 'visible', timeout: 20_000 });
      expect(await banner.textContent()).toContain(`opened on the gateway itself as https://127.0.0.1:${lonePort}/ or https://localhost:${lonePort}/, not by the name gateway.test`);
      const answer = (await page.evaluate(async () => (await fetch('/status')).json())) as { error: string };
      expect(answer.error).toContain('open https://127.0.0.1:<port>/ or set PUMPWATCH_STATUS_TOKEN');
    } finally {
      await context.close();
      await lone.stop();
    }
  });

  it('warns at start-up when the certificate has expired by the gateway clock', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    // The test CA's certificates run to the end of 2049 (agent/local-hub/certs.ts).
    const late = await startTestAgent(tlsEnv(certFile, keyFile), { clock: () => Date.UTC(2050, 0, 1), logger });
    await late.stop();
    expect(lines.find((l) => l.level === 40 && String(l.msg).startsWith("the status endpoint's certificate expired at 2049-12-31T23:59:59.000Z: browsers refuse it"))).toMatchObject({
      component: 'http',
      subject: 'CN=localhost',
      subjectAltName: expect.stringContaining('DNS:gateway.test'),
    });
  });

  it("is the one the container's health probe asks, over HTTPS, at the agent's address and port", () => {
    const probe = (env: Record<string, string>) =>
      spawnSync(process.execPath, [join(packageRoot(), 'dist', 'agent', 'healthcheck.js')], { env: { PATH: process.env.PATH ?? '', PUMPWATCH_HTTP_HOST: '0.0.0.0', PUMPWATCH_HTTP_PORT: String(port), ...env }, encoding: 'utf8', timeout: 30_000 });
    const ok = probe(tlsEnv(certFile, keyFile));
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${port}/healthz: 200 \\{"status":"ok"`));
    // Asked in plain HTTP (what the Dockerfile's probe did), the agent gives no answer: unhealthy.
    const plain = probe({});
    expect(plain.status).toBe(1);
    expect(plain.stdout).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/healthz: `));
  });
});

describe('a certificate or key the status endpoint cannot use', () => {
  /** Runs the agent with these TLS files; its exit code and stderr. */
  async function run(cert: string, key: string): Promise<{ code: number | string; stderr: string; output: string }> {
    const proc = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data-bad'), ...tlsEnv(cert, key), PUMPWATCH_LOG_LEVEL: 'info' });
    refused.push(proc);
    let stderr = '';
    proc.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await proc.exited;
    return { code, stderr, output: proc.output() };
  }
  const SECRET = 'KEEPTHISSECRETb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ';

  it.each([
    ['a key file that does not exist', () => [certFile, join(dir, 'missing-key.pem')], 'PUMPWATCH_HTTP_TLS_KEY_FILE', (_c: string, k: string) => k, 'no such file'],
    ['a folder as the certificate', () => [mkdirAndReturn(join(dir, 'cert-folder')), keyFile], 'PUMPWATCH_HTTP_TLS_CERT_FILE', (c: string) => c, 'is a folder, not a certificate file'],
    ['the key given as the certificate', () => [keyFile, keyFile], 'PUMPWATCH_HTTP_TLS_CERT_FILE', (c: string) => c, 'not a PEM certificate (no -----BEGIN CERTIFICATE----- line)'],
    ['a key file that is not PEM', () => [certFile, write('notes.pem', `${SECRET}\n`)], 'PUMPWATCH_HTTP_TLS_KEY_FILE', (_c: string, k: string) => k, 'not a PEM private key (no -----BEGIN … PRIVATE KEY----- line)'],
    ['a PEM key that cannot be parsed', () => [certFile, write('broken-key.pem', `-----BEGIN PRIVATE KEY-----\n${SECRET}\n-----END PRIVATE KEY-----\n`)], 'PUMPWATCH_HTTP_TLS_KEY_FILE', (_c: string, k: string) => k, 'not a PEM private key (it cannot be parsed)'],
    ['a key with a passphrase', () => [certFile, write('encrypted-key.pem', createPrivateKey(tls.key).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string)], 'PUMPWATCH_HTTP_TLS_KEY_FILE', (_c: string, k: string) => k, 'the key is encrypted: give it without a passphrase (openssl pkey -in KEY -out KEY.plain)'],
    ['an RSA key with a passphrase, in the traditional form', () => [certFile, write('encrypted-rsa.pem', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1', cipher: 'aes-128-cbc', passphrase: 'pw' }) as string)], 'PUMPWATCH_HTTP_TLS_KEY_FILE', (_c: string, k: string) => k, 'the key is encrypted: give it without a passphrase (openssl pkey -in KEY -out KEY.plain)'],
  ] as const)('stops the agent with exit 2 and one line naming the variable and the file: %s', async (_what, files, env, named, reason) => {
    const [cert, key] = files() as [string, string];
    const { code, stderr, output } = await run(cert, key);
    expect(code).toBe(2);
    expect(stderr).toBe(`pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: ${env}=${JSON.stringify(named(cert, key))}: ${reason}\n`);
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain('PRIVATE KEY-----\n');
    expect(output).not.toContain('agent failed to start');
  });

  it("stops the agent when the key is not the certificate's, naming both files", async () => {
    const other = await makeTlsMaterial();
    const otherKey = write('other-key.pem', other.key);
    const { code, stderr } = await run(certFile, otherKey);
    expect(code).toBe(2);
    expect(stderr).toBe(`pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_TLS_KEY_FILE=${JSON.stringify(otherKey)}: not the private key of the certificate in PUMPWATCH_HTTP_TLS_CERT_FILE (${JSON.stringify(certFile)})\n`);
  });

  it('stops the agent when only one of the two is set, naming the one missing', async () => {
    const proc = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data-bad'), PUMPWATCH_HTTP_TLS_CERT_FILE: certFile });
    refused.push(proc);
    let stderr = '';
    proc.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await proc.exited).toBe(2);
    expect(stderr).toBe('pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_HTTP_TLS_KEY_FILE is not set, but PUMPWATCH_HTTP_TLS_CERT_FILE is: set both for HTTPS, or neither for plain HTTP\n');
  });
});

function mkdirAndReturn(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
