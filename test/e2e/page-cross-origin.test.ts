/**
 * Other web pages in a technician's browser against a real agent with no status token (loopback
 * only, the standalone default), in a real Chromium: a page of another origin posting "simple"
 * requests, and a page whose host name was re-pointed at the gateway (DNS rebinding).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestAgent, type TestAgent } from '../support/agent.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let t: TestAgent;
let port: number;
let browser: Browser;
let evil: Server;
let evilUrl: string;

const labelsOf = async (pumpId: string) => ((await (await fetch(`${t.url}/labels?pumpId=${pumpId}`)).json()) as any).labels;
const pumpIds = async () => ((await (await fetch(`${t.url}/pumps`)).json()) as any).pumps.map((p: any) => p.pumpId);

beforeAll(async () => {
  t = await startTestAgent();
  port = Number(new URL(t.url).port);
  // Another site: a page that posts to the gateway as soon as it is opened.
  evil = createServer((req, res) => {
    // /heavy?host=…: a page that makes the gateway run its heaviest queries by no-cors GETs and
    // an image (it cannot read the answers), and opens its live stream.
    const heavy = /^\/heavy\?host=([\w.]+)$/.exec(req.url ?? '');
    if (heavy) {
      const agent = `http://${heavy[1]}:${port}`;
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><script>
        const img = new Image();
        const loaded = new Promise((resolve) => { img.onload = img.onerror = resolve; });
        img.src = '${agent}/alerts?perPump=1000&since=2100-01-01T00:00:00Z';
        const get = (path) => fetch('${agent}' + path, { mode: 'no-cors' });
        window.done = Promise.allSettled([loaded, get('/alerts?perPump=1000&since=2100-01-01T00:00:00Z'), get('/pumps/p/predictions?since=2100-01-01T00:00:00Z'), get('/events')]);
      </script>`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><script>
      const agent = 'http://127.0.0.1:${port}';
      const post = (path, body) => fetch(agent + path, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body) });
      window.done = Promise.allSettled([
        post('/labels', { pumpId: 'csrf-1', kind: 'maintenance', from: 0, to: 1000, author: 'mallory', note: 'not maintenance' }),
        post('/readings', { pumpId: 'csrf-1', ts: Date.now(), values: { Pressure: 1.4, Flow: 30, Current: 1.4 } }),
      ]);
    </script>`);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/`;
  // evil.test resolves to the gateway, as a rebinding DNS server would make it after the first load
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP evil.test 127.0.0.1'] });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => evil?.close(r));
  await t?.stop();
});

describe('a page of another site in the technician browser', () => {
  it('cannot store a label or a reading on a gateway without a token by posting text/plain to it', async () => {
    const page = await browser.newPage();
    await page.goto(evilUrl);
    await page.evaluate(() => (globalThis as any).done);
    expect(await labelsOf('csrf-1')).toEqual([]);
    expect(await pumpIds()).not.toContain('csrf-1');
    await page.close();
  });

  it('cannot make the gateway run a query by GETs from another site or another port of 127.0.0.1', async () => {
    // 127.0.0.1:<other port> is the same site as the gateway's 127.0.0.1 (a site ignores the
    // port), evil.test another site. Chromium drops the answers (opaque, then blocked as neither
    // script, style nor image), so the page learns nothing, but before the gateway refused them by
    // Sec-Fetch-Site each GET ran its query: with many alerts, a stall of ingestion every time.
    const evilPort = new URL(evilUrl).port;
    const db = t.agent.buffer.db;
    const prepare = vi.spyOn(db, 'prepare');
    const alertQueries = () => prepare.mock.calls.filter(([sql]) => /RECURSIVE pumps|FROM readings WHERE pump_id = \?/.test(sql)).length;
    try {
      for (const from of [`http://127.0.0.1:${evilPort}/heavy?host=127.0.0.1`, `http://evil.test:${evilPort}/heavy?host=localhost`]) {
        const page = await browser.newPage();
        await page.goto(from);
        await page.evaluate(() => (globalThis as any).done);
        await page.close();
      }
      expect(alertQueries()).toBe(0);
      // The gateway's own page asks the same and is answered.
      const own = await browser.newPage();
      await own.goto(t.url);
      expect(await own.evaluate(async () => (await fetch('/alerts?perPump=1000&since=2100-01-01T00:00:00Z')).status)).toBe(200);
      await own.close();
      expect(alertQueries()).toBeGreaterThan(0);
    } finally {
      prepare.mockRestore();
    }
  });

  it('cannot read or write the gateway through a host name re-pointed at it (DNS rebinding)', async () => {
    const page = await browser.newPage();
    await page.goto(`http://evil.test:${port}/`);
    const answers = await page.evaluate(async () => {
      const status = await fetch('/status');
      const label = await fetch('/labels', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pumpId: 'rebind-1', kind: 'maintenance', from: 0, to: 1000, author: 'mallory' }) });
      return { status: status.status, statusBody: await status.text(), label: label.status };
    });
    expect(answers.status).toBe(403);
    expect(answers.statusBody).not.toContain('uptimeSeconds');
    expect(answers.label).toBe(403);
    expect(await labelsOf('rebind-1')).toEqual([]);
    await page.close();
  });

  it('tells a technician who opened the page by a host name to open it as 127.0.0.1 or localhost', async () => {
    const page = await browser.newPage();
    await page.goto(`http://evil.test:${port}/`);
    const banner = page.locator('#banner');
    await banner.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await banner.textContent()).toContain(`opened on the gateway itself as http://127.0.0.1:${port}/ or http://localhost:${port}/, not by the name evil.test`);
    await page.close();
  });

  it('leaves the gateway own page free to read and to save a label', async () => {
    const page = await browser.newPage();
    await page.goto(t.url);
    const answers = await page.evaluate(async () => {
      const status = await fetch('/status');
      const label = await fetch('/labels', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pumpId: 'own-1', kind: 'maintenance', from: Date.now() - 60_000, to: Date.now(), author: 'Ana' }) });
      return { status: status.status, label: label.status };
    });
    expect(answers).toEqual({ status: 200, label: 201 });
    expect(await labelsOf('own-1')).toHaveLength(1);
    await page.close();
  });
});
