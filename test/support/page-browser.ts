/**
 * The technician's page in a real browser, shared by the page-browser-*.test.ts files (split so that
 * both vitest workers share the ~230 s of them): Debian's Chromium, an agent with real SQLite and
 * onnxruntime seeded with four pumps, Azurite for the labels' upload, and a page whose every
 * request is checked. usePageBrowser() starts the browser alone, usePageAgent() the seeded agent
 * too (and Azurite when asked) in the calling file's beforeAll; `t`, `container` and `browser` are
 * live bindings, set once it has run.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { postJson, startTestAgent, type TestAgent } from './agent.js';
import { startTestAzurite, type TestAzurite } from './azurite.js';
import { normalValues, rng } from './models.js';


export const ARTIFACTS = join(packageRoot(), 'test-artifacts');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let azurite: TestAzurite | undefined;
export let container: ContainerClient;
export let t: TestAgent;
let skewMs = 0;
export let browser: Browser;

/** Moves the agent's clocks (wall and monotonic) `ms` off: readings sent meanwhile were received that long ago. */
export function setSkew(ms: number): void {
  skewMs = ms;
}

/** Readings of the last few minutes for four pumps: two normal, one drifting into a fault, one silent for 10 min. */
async function seed(agent: TestAgent): Promise<void> {
  const r = rng(11);
  const end = Date.now() - 1000;
  const series = (pumpId: string, n: number, fault: (i: number) => boolean, endTs = end, spikeAt = -1) =>
    Array.from({ length: n }, (_, i) => {
      const v = normalValues(r, i);
      if (i === spikeAt) v.Pressure = v.Pressure! - 0.5;
      if (fault(i)) {
        const k = Math.min(1, (i - (n - 25)) / 10);
        v.Pressure = v.Pressure! - 0.6 * k;
        v.Current = v.Current! + 0.25 * k;
      }
      return { pumpId, ts: endTs - (n - 1 - i) * 1000, values: v };
    });
  // pump-1 had one spike a minute ago, labelled a false alarm by a colleague
  expect((await postJson(`${agent.url}/readings`, series('pump-1', 180, () => false, end, 120))).status).toBe(202);
  expect((await postJson(`${agent.url}/readings`, series('pump-2', 180, (i) => i >= 155))).status).toBe(202);
  expect((await postJson(`${agent.url}/readings`, series('pump-3', 180, () => false))).status).toBe(202);
  const [alert] = ((await (await fetch(`${agent.url}/alerts?pumpId=pump-1`)).json()) as any).alerts;
  await postJson(`${agent.url}/labels`, { pumpId: 'pump-1', kind: 'false-alarm', alertSeq: alert.seq, author: 'Ben', note: 'valve exercise' });
  skewMs = -10 * 60_000; // pump-4's readings were received ten minutes ago
  await postJson(`${agent.url}/readings`, series('pump-4', 60, () => false, end - 10 * 60_000));
  skewMs = 0;
}

export interface Watched {
  page: Page;
  offHost: string[];
  errors: string[];
  urls: string[];
  authHeaders: string[];
}

/** A page whose every request is checked: anything not for the agent on 127.0.0.1 is recorded and aborted. */
export async function openPage(
  url: string,
  viewport = { width: 1280, height: 900 },
  options: { timezoneId?: string; blockEvents?: boolean; initScript?: string } = {},
): Promise<Watched> {
  const { blockEvents, initScript, ...pageOptions } = options;
  const page = await browser.newPage({ viewport, ...pageOptions });
  if (initScript) await page.addInitScript(initScript);
  const w: Watched = { page, offHost: [], errors: [], urls: [], authHeaders: [] };
  const origin = new URL(url).origin;
  await page.route('**', async (route) => {
    const req = route.request();
    w.urls.push(req.url());
    const auth = await req.headerValue('authorization');
    if (auth) w.authHeaders.push(auth);
    if (new URL(req.url()).origin !== origin) {
      w.offHost.push(req.url());
      return route.abort();
    }
    if (blockEvents === true && new URL(req.url()).pathname === '/events') return route.abort(); // a proxy that buffers the stream
    return route.continue();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) w.errors.push(m.text());
  });
  page.on('pageerror', (e) => w.errors.push(e.message));
  await page.goto(url);
  return w;
}

/** Starts Chromium for the calling test file, and closes it after it. */
export function usePageBrowser(): void {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });
}

/**
 * Starts Chromium and the seeded agent for the calling test file, and stops them after it; with
 * `azurite`, also Azurite and its `container` (the agent's sync is off: only a test that uploads
 * labels itself needs it, and the files that do not are spared its start).
 */
export function usePageAgent({ azurite: withAzurite = false } = {}): void {
  usePageBrowser();
  beforeAll(async () => {
    if (withAzurite) {
      azurite = await startTestAzurite();
      container = azurite.container('pumpwatch');
      await container.create();
    }
    // Both clocks move together: readings sent while skewMs is -10 min were received ten minutes ago.
    t = await startTestAgent({ PUMPWATCH_DEVICE_ID: 'gw-test' }, { clock: () => Date.now() + skewMs, monotonic: () => performance.now() + skewMs });
    await seed(t);
  });

  afterAll(async () => {
    await t?.stop();
    await azurite?.dispose();
  });
}

/** An init script that sets this device's clock `offsetMs` off (Date.now() and new Date()), as a phone set by hand. */
export const shiftClock = (offsetMs: number) => `(() => {
  const off = ${offsetMs}; const RealDate = Date; const now = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate { constructor(...a) { if (a.length === 0) super(now() + off); else super(...a); } static now() { return now() + off; } }
  globalThis.Date = ShiftedDate;
})();`;
export const THREE_HOURS = 3 * 3_600_000;
