/**
 * The technician's page in Chromium with the IoT hub down and a pump in alarm: the commissioning
 * review saw /status `alerts.pending` 1 while the page said only "Cloud: upload failed…" (the blob
 * uploads), nothing of the alarm the control room had not received. The agent here is the module of
 * the local hub, its broker stopped; the page says how many alerts wait and since when the hub is
 * unreachable, and says nothing more once the broker is back and the alert delivered.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { openPage, usePageBrowser } from '../support/page-browser.js';

const DEVICE = 'gw-page-hub';
let hub: LocalHub;
let t: TestAgent;

usePageBrowser();

beforeAll(async () => {
  hub = await LocalHub.start();
  t = await startHubAgent(hub, hub.addModule(DEVICE, 'pumpwatch'), DEVICE);
  await vi.waitFor(async () => expect(((await (await fetch(`${t.url}/status`)).json()) as any).connectivity.hub).toBe('connected'), { timeout: 60_000, interval: 100 });
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

describe('the control room line of the technician page', () => {
  it('says an alert is not yet delivered and since when the hub is unreachable, and clears once it is delivered', async () => {
    await hub.stopBroker();
    const spike = { Pressure: 4, Flow: 30, Current: 1.4 };
    expect((await postJson(`${t.url}/readings`, [{ pumpId: 'P-102', ts: new Date().toISOString(), values: spike }])).status).toBe(202);
    await expect.poll(async () => ((await (await fetch(`${t.url}/status`)).json()) as any).alerts.pending, { timeout: 30_000 }).toBe(1);

    const { page, errors } = await openPage(t.url);
    const line = page.locator('#hub');
    await expect.poll(() => line.isVisible(), { timeout: 15_000 }).toBe(true);
    const text = await page.locator('#hub-text').textContent();
    console.log(`page: ${text}`);
    expect(text).toMatch(/^1 alert not yet delivered to the control room: the IoT hub is unreachable since \d{1,2}:\d{2}( [AP]M)?$/);
    expect(await line.getAttribute('class')).toContain('problem');

    await hub.startBroker();
    await expect.poll(() => line.isVisible(), { timeout: 60_000 }).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  });
});
