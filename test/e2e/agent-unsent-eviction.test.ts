/**
 * Readings evicted before they were uploaded (the cap reached while offline), the agent as a
 * process: /healthz named nothing ({"status":"ok","degraded":[]}) and the technician's page said
 * nothing of the loss, told only in /status `buffer.evictedByKind` and a log line. Now /healthz is
 * degraded (`buffer`: PW_BUFFER_UNSENT_EVICTED, how many and when the last was) for 24 h after the
 * last such eviction, across restarts; the page says it in red on the buffer's line, whose size is
 * that of the cap in force (on a small volume, the disk's limit, not the 1 GiB setting), counted as
 * the cap counts it (the write-ahead log too).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { fmtBytes } from '../../agent/page/format.js';
import { DEVSTORE_ACCOUNT, DEVSTORE_KEY } from '../../agent/azurite.js';
import { agentPool, getJson, postReadings, stopAgent } from '../support/agent-http.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';
import { makeModel, normalValues, rng } from '../support/models.js';

/**
 * A sync whose Blob Storage is out of reach (nothing listens on port 9): rows are to be uploaded and
 * wait, as on a gateway offline. With the sync off (the test agents' default) nothing is ever to be
 * uploaded, and an eviction is the design, not a loss.
 */
const OFFLINE = {
  PUMPWATCH_SYNC: 'auto',
  PUMPWATCH_BLOB_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};BlobEndpoint=http://127.0.0.1:9/${DEVSTORE_ACCOUNT};`,
};

let dir: string;
let model: string;
const pool = agentPool();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-unsent-evicted-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel());
});

afterAll(async () => {
  await pool.killAll();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** `n` readings of five pumps, each with 20 more sensors than the model reads, so a 1 MiB cap fills within a few thousand. */
export function wideReadings(n: number, seed = 5): Reading[] {
  const r = rng(seed);
  const start = Date.now() - n * 10;
  return Array.from({ length: n }, (_, i) => {
    const values: Record<string, number> = normalValues(r, i);
    for (let k = 0; k < 20; k++) values[`Sensor_${k}`] = Math.round(r() * 1e6) / 1e3;
    return { pumpId: `pump-${i % 5}`, ts: start + i * 10, values };
  });
}

async function healthz(agent: AgentProcess): Promise<{ status: string; degraded: string[]; checks: Record<string, string> }> {
  const res = await fetch(`${agent.url}/healthz`);
  expect(res.status).toBe(200); // degraded is running: IoT Edge leaves the module alone
  return (await res.json()) as { status: string; degraded: string[]; checks: Record<string, string> };
}

describe('readings evicted before they were uploaded, the agent as a process', () => {
  it('make /healthz degraded naming how many and when the last was, across a restart, until 24 h after the last', async () => {
    const data = join(dir, 'data');
    const start = (): Promise<AgentProcess> => pool.start({ ...OFFLINE, PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_BUFFER_MAX_BYTES: '1048576' });
    const agent = await start();
    expect((await healthz(agent)).status).toBe('ok');
    await postReadings(agent, wideReadings(8_000));

    const buffer = (await getJson(agent, '/status')).buffer;
    const lost = buffer.evictedByKind.unsynced + buffer.evictedByKind.anomalies;
    expect(lost).toBeGreaterThan(0);
    const h = await healthz(agent);
    expect(h).toMatchObject({ status: 'degraded', degraded: ['buffer'] });
    expect(buffer.unsentEvicted.sinceStart).toBe(lost);
    const lastAt = buffer.unsentEvicted.lastAt as string;
    expect(Date.parse(lastAt)).toBeGreaterThan(Date.now() - 3600_000);
    expect(h.checks.buffer).toBe(
      `PW_BUFFER_UNSENT_EVICTED: ${lost} reading(s) evicted before they were uploaded since start (${lost} since the buffer was created), ` +
        `the last at ${lastAt}, to stay under the cap of 1048576 bytes in force: they never reach Blob Storage (said for 24 h after the last)`,
    );
    await stopAgent(agent);

    // A restart (IoT Edge restarts the module at each deployment) does not hide the loss.
    const again = await start();
    const after = await healthz(again);
    expect(after.degraded).toEqual(['buffer']);
    expect(after.checks.buffer).toMatch(new RegExp(`^PW_BUFFER_UNSENT_EVICTED: 0 reading\\(s\\) evicted before they were uploaded since start \\(${lost} since the buffer was created\\), the last at ${lastAt},`));
    expect((await getJson(again, '/status')).buffer.unsentEvicted).toEqual({ sinceStart: 0, lastAt });
    // the page says it too, as long as /healthz does (it said nothing with none since start)
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      await page.goto(again.url);
      const lostLine = page.locator('#gateway dt:text-is("Buffer") + dd .lost');
      await lostLine.waitFor();
      expect(await lostLine.textContent()).toMatch(/^ · readings evicted before they were uploaded \(before the agent's start\), the last at .+: lost$/);
    } finally {
      await browser.close();
    }
    await stopAgent(again);

    // The last such eviction 25 h ago: said no more in /healthz, still in /status.
    const dayAgo = Date.parse(lastAt) - 25 * 3600_000;
    const db = new Database(join(data, 'buffer.sqlite'));
    expect(db.prepare("UPDATE counters SET value = ? WHERE name = 'unsent_evicted_last_at'").run(dayAgo).changes).toBe(1);
    db.close();
    const later = await start();
    expect(await healthz(later)).toMatchObject({ status: 'ok', degraded: [] });
    const status = (await getJson(later, '/status')).buffer;
    expect(status.unsentEvicted).toEqual({ sinceStart: 0, lastAt: new Date(dayAgo).toISOString() });
    expect(status.evictedByKind.unsynced + status.evictedByKind.anomalies).toBe(lost);
    await stopAgent(later);
  });

  it('leave /healthz ok with the sync off: nothing was to be uploaded, and evicting the oldest is the design', async () => {
    // Found by the re-review: every gateway without uploads went degraded for good once its buffer was full.
    const agent = await pool.start({ PUMPWATCH_DATA_DIR: join(dir, 'data-off'), PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_BUFFER_MAX_BYTES: '1048576' });
    await postReadings(agent, wideReadings(8_000, 7));
    const buffer = (await getJson(agent, '/status')).buffer;
    expect(buffer.evictedByKind.unsynced + buffer.evictedByKind.anomalies).toBeGreaterThan(0);
    expect(await healthz(agent)).toMatchObject({ status: 'ok', degraded: [] });
    await stopAgent(agent);
  });
});

const mnt = mkdtempSync(join(tmpdir(), 'pw-unsent-evicted-volume-'));
const canMount = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=1m tmpfs ${mnt}`]).status === 0;
if (!canMount) console.warn('agent-unsent-eviction: page test skipped: cannot mount a tmpfs in a user and mount namespace (unshare -rm) here');
afterAll(() => rmSync(mnt, { recursive: true, force: true }));

describe.skipIf(!canMount)('the technician page of an agent whose 4 MiB volume filled while offline', () => {
  it('shows the buffer against the disk\'s limit, WAL counted, and in red the readings evicted before they were uploaded', async () => {
    // `unshare` and `sh` exec the agent: the agent itself, in the namespace of its 4 MiB tmpfs (the default cap of 1 GiB stays).
    const mount = ['set -e', `mount -t tmpfs -o size=4m tmpfs ${mnt}`, 'exec "$@"'].join('\n');
    const agent = await startAgentProcess({ ...OFFLINE, PUMPWATCH_DATA_DIR: join(mnt, 'data'), PUMPWATCH_DEFAULT_MODEL: model }, undefined, { prefix: ['unshare', '-rm', 'sh', '-c', mount, 'sh'] });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      await agent.waitReady();
      const buffer = async (): Promise<any> => (await getJson(agent, '/status')).buffer;
      for (let seed = 1; (await buffer()).unsentEvicted.sinceStart === 0 && seed <= 20; seed++) await postReadings(agent, wideReadings(4_000, seed));
      const b = await buffer();
      expect(b.unsentEvicted.sinceStart).toBeGreaterThan(0);
      expect(b.maxBytes).toBe(1073741824);
      expect(b.diskLimitBytes).toBeLessThan(4 << 20);
      // /metrics gives the cap in force too (it gave the 1 GiB setting before)
      const metrics = await (await fetch(`${agent.url}/metrics`)).text();
      expect(Number(/^pumpwatch_buffer_max_bytes (\d+)$/m.exec(metrics)?.[1])).toBeLessThan(4 << 20);

      const page = await browser.newPage();
      await page.goto(agent.url);
      const line = page.locator('#gateway dt:text-is("Buffer") + dd');
      const lost = line.locator('.lost');
      await lost.waitFor();
      expect(await lost.textContent()).toMatch(new RegExp(`^ · ${b.unsentEvicted.sinceStart.toLocaleString('en-US')} readings evicted before they were uploaded since start, the last at \\d{1,2}:\\d\\d:\\d\\d( [AP]M)?: lost$`));
      const colorOf = (e: unknown): string => (globalThis as any).getComputedStyle(e).color;
      const red = await page.evaluate(() => {
        const doc = (globalThis as any).document;
        const probe = doc.createElement('span');
        probe.style.color = 'var(--anomaly)';
        doc.body.append(probe);
        return (globalThis as any).getComputedStyle(probe).color as string;
      });
      expect(await lost.evaluate(colorOf)).toBe(red);
      // The size as the cap counts it (pages in use and the WAL) against the cap in force, read
      // between two equal answers of /status (the checkpoint thread moves the WAL).
      const size = (s: any): string => `${fmtBytes(s.bytes + s.walBytes)} of ${fmtBytes(s.diskLimitBytes)} (the disk's free space is the limit; the setting is 1.0 GB)`;
      await expect
        .poll(async () => {
          const before = size(await buffer());
          await page.reload();
          await lost.waitFor();
          const text = await line.textContent();
          return before === size(await buffer()) ? text!.includes(`not yet uploaded, ${before} · `) : 'the buffer was changing';
        }, { timeout: 60_000 })
        .toBe(true);
    } finally {
      await browser.close();
      agent.proc.kill('SIGTERM');
      await agent.exited;
    }
  });
});
