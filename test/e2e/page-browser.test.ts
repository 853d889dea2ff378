/**
 * The technician's page in a real browser (Debian's Chromium driven by playwright-core) against a
 * running agent with real SQLite, onnxruntime and Azurite. Screenshots go to test-artifacts/.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelStore } from '../../buffer/labels.js';
import { packageRoot } from '../../agent/paths.js';
import { readLabels, uploadPendingLabels } from '../../sync/labels-upload.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { normalValues, rng } from '../support/models.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { accessibilityProblems, contrastProblems } from './page-a11y.js';

const ARTIFACTS = join(packageRoot(), 'test-artifacts');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let dir: string;
let azurite: TestAzurite;
let container: ContainerClient;
let t: TestAgent;
let skewMs = 0;
let browser: Browser;

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

interface Watched {
  page: Page;
  offHost: string[];
  errors: string[];
  urls: string[];
  authHeaders: string[];
}

/** A page whose every request is checked: anything not for the agent on 127.0.0.1 is recorded and aborted. */
async function openPage(url: string, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const page = await browser.newPage({ viewport });
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
    return route.continue();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) w.errors.push(m.text());
  });
  page.on('pageerror', (e) => w.errors.push(e.message));
  await page.goto(url);
  return w;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-page-e2e-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  azurite = await startTestAzurite();
  container = azurite.container('pumpwatch');
  await container.create();
  t = await startTestAgent({ PUMPWATCH_DEVICE_ID: 'gw-test' }, { clock: () => Date.now() + skewMs });
  await seed(t);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await azurite?.dispose();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the technician page', () => {
  it('loads with no request leaving the host and shows each pump of the running agent with its state', async () => {
    const w = await openPage(t.url);
    const { page } = w;
    await page.locator('#pumps button').nth(3).waitFor();
    const states = await page.locator('#pumps button').evaluateAll((bs) => bs.map((b) => [b.getAttribute('data-pump'), b.getAttribute('data-state')]));
    expect(states).toEqual([
      ['pump-2', 'anomaly'],
      ['pump-4', 'stale'],
      ['pump-1', 'normal'],
      ['pump-3', 'normal'],
    ]);
    await expect.poll(() => page.locator('button[data-pump="pump-2"] .badge').textContent()).toBe('Anomaly');
    await page.locator('#score-chart canvas').waitFor();
    expect(await page.locator('#detail-h').textContent()).toBe('Pump pump-2');
    expect(await page.locator('#detail-why').textContent()).toMatch(/^Anomaly since .*main contributors: /);
    // The agent's model was fitted on ten minutes of readings: the page says it has not seen a day.
    expect(await page.locator('#detail-model').textContent()).toMatch(/^Scored by model test-1, trained on only 9 min of readings \(.+ to .+\), less than a day: /);
    expect(await page.locator('#detail-model').getAttribute('class')).toBe('model-line short');
    expect(await page.locator('#gateway').textContent()).toContain('gw-test');
    expect(w.offHost).toEqual([]);
    expect(w.urls.length).toBeGreaterThan(5);
    expect(w.errors).toEqual([]);
    await page.close();
  });

  it('updates the chart and the pump list when new readings arrive, without reloading', async () => {
    const { page, offHost } = await openPage(t.url);
    await page.locator('button[data-pump="pump-2"]').click();
    await expect.poll(() => page.locator('#detail-h').textContent()).toBe('Pump pump-2');
    await page.locator('#score-chart canvas').waitFor();
    const before = Number(await page.locator('#score-chart').getAttribute('data-points'));
    await page.evaluate(() => ((globalThis as any).__sameDocument = true));
    const r = rng(5);
    const now = Date.now();
    await postJson(`${t.url}/readings`, [0, 1, 2].map((i) => ({ pumpId: 'pump-2', ts: now + i, values: normalValues(r, i) })));
    await postJson(`${t.url}/readings`, { pumpId: 'pump-5', ts: now, values: normalValues(r, 0) });
    await expect.poll(async () => Number(await page.locator('#score-chart').getAttribute('data-points')), { timeout: 15_000 }).toBe(before + 3);
    await page.locator('button[data-pump="pump-5"]').waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
    expect(offHost).toEqual([]);
    await page.close();
  });

  it('saves a label made with the keyboard only; it lands in SQLite, then in Azurite', async () => {
    const { page } = await openPage(t.url);
    const first = page.locator('#alerts li').filter({ hasText: 'pump-2' }).first();
    await first.waitFor();
    const seq = Number(await first.getAttribute('data-seq'));
    await first.getByRole('button', { name: /^Label alert of pump-2/ }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#label-dialog').evaluate((d) => (d as any).open)).toBe(true);
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.getAttribute('value'))).toBe('confirmed-fault');
    await page.keyboard.press('Space');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.id)).toBe('fault-type');
    await page.keyboard.press('ArrowDown'); // Bearing
    await page.keyboard.press('Tab');
    await page.keyboard.type('Rumbling at the drive end');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Ana Tech');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#label-dialog').evaluate((d) => (d as any).open)).toBe(false);
    await expect.poll(() => page.locator(`#alerts li[data-seq="${seq}"] .label-text`).textContent()).toMatch(/^Confirmed fault: bearing, by Ana Tech/);

    const labels = new LabelStore(t.agent.buffer);
    const stored = labels.list({ pumpId: 'pump-2', limit: 10 });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ kind: 'confirmed-fault', faultType: 'bearing', note: 'Rumbling at the drive end', author: 'Ana Tech', alertSeq: seq, synced: false });
    expect(await uploadPendingLabels(container, labels, t.agent.config.resolvedDeviceId)).toEqual({ uploaded: 2, alreadyPresent: 0 });
    const inBlob = (await readLabels(container, 'gw-test')).find((l) => l.id === stored[0]!.id);
    expect(inBlob).toMatchObject({ deviceId: 'gw-test', pumpId: 'pump-2', kind: 'confirmed-fault', faultType: 'bearing', author: 'Ana Tech', alertSeq: seq });
    await page.close();
  });

  it('labels every control, meets WCAG AA contrast, and saves phone and laptop screenshots', async () => {
    for (const [name, viewport] of [
      ['phone', { width: 390, height: 844 }],
      ['laptop', { width: 1280, height: 900 }],
    ] as const) {
      const { page } = await openPage(t.url, viewport);
      await page.locator('#score-chart canvas').waitFor();
      await page.locator('#sensor-charts canvas').first().waitFor();
      await page.locator('#gateway dt').first().waitFor();
      expect(await page.evaluate(accessibilityProblems)).toEqual([]);
      expect(await page.evaluate(contrastProblems)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `page-${name}.png`) });
      await page.screenshot({ path: join(ARTIFACTS, `page-${name}-full.png`), fullPage: true });
      await page.locator('#alerts button').first().click();
      expect(await page.evaluate(contrastProblems)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `page-${name}-label.png`) });
      await page.close();
    }
  });
});

describe('messages a technician understands', () => {
  it('asks for the token only when the agent wants one, says when it is wrong, and never puts it in a URL', async () => {
    const secured = await startTestAgent({ PUMPWATCH_STATUS_TOKEN: 'pump-secret-42' });
    try {
      await postJson(`${secured.url}/readings`, { pumpId: 'pump-9', ts: Date.now(), values: { Pressure: 1.4, Flow: 30, Current: 1.4 } }, { authorization: 'Bearer pump-secret-42' });
      const w = await openPage(secured.url);
      const { page } = w;
      await page.getByLabel('Status token').waitFor();
      await page.getByLabel('Status token').fill('not-it');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/That status token is wrong/);
      await page.getByLabel('Status token').fill('pump-secret-42');
      await page.keyboard.press('Enter');
      await page.locator('button[data-pump="pump-9"]').waitFor();
      expect(w.urls.some((u) => u.includes('pump-secret-42'))).toBe(false);
      expect(w.authHeaders).toContain('Bearer pump-secret-42');
      expect(w.errors).toEqual([]);
      await page.close();
    } finally {
      await secured.stop();
    }
  });

  it('says when no model is active yet and when the agent cannot be reached', async () => {
    const lone = await startTestAgent();
    let stopped = false;
    try {
      const model = lone.agent.engine.model('default');
      lone.agent.engine.setModel('default', null);
      lone.agent.models.setStatus('default', null, 'rejected', 'removed for the test');
      await model?.release();
      await postJson(`${lone.url}/readings`, { pumpId: 'pump-0', ts: Date.now(), values: { Pressure: 1.4, Flow: 30, Current: 1.4 } });
      const { page } = await openPage(lone.url);
      await expect.poll(() => page.locator('#notice').textContent()).toMatch(/^No model yet/);
      await expect.poll(() => page.locator('button[data-pump="pump-0"] .badge').textContent()).toBe('No model');
      await lone.stop();
      stopped = true;
      await expect.poll(() => page.locator('#banner').textContent(), { timeout: 15_000 }).toMatch(/^Cannot reach the PumpWatch agent/);
      expect(await page.locator('#banner').textContent()).not.toMatch(/Error|\.js:\d|stack/i);
      await page.close();
    } finally {
      if (!stopped) await lone.stop();
    }
  });
});
