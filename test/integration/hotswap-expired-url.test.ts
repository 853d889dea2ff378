/**
 * A desired model whose SAS URL expired (a gateway offline longer than the 7 days a trainer's URL
 * lasts), with the agent's own updater, real model files, a real HTTP server that answers as Blob
 * Storage does (403 AuthenticationFailed, its x-ms-error-code and XML body), real onnxruntime
 * sessions and a real SQLite buffer: the refusal says the URL expired and how to get a fresh one,
 * never shows the signature, and a fresh URL for the same version is downloaded and switched in,
 * at once and after a restart whose stored copy no longer loads.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

const DAY = 24 * 3600 * 1000;
let dir: string;
let server: ModelServer;
let agent: Agent;
let updater: ModelUpdater;
const logLines: string[] = [];
const random = rng(61);

function makeAgent(): Agent {
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  return new Agent({ config, logger, defaultModelPath: join(dir, 'bundled.onnx') });
}

async function startAgent(): Promise<void> {
  agent = makeAgent();
  await agent.start();
  updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 20 }, downloadAttempts: 3, retryBackoff: { baseMs: 3_600_000, capMs: 3_600_000 } }).updater;
}

/** Sets the desired models as a twin read would, and waits until the agent acted on them. */
async function desire(models: Record<string, DesiredModel>): Promise<void> {
  updater.setDesired(models);
  await updater.idle();
}

const status = (key: string) => agent.models.status()[key];
const persisted = () => agent.buffer.getMeta('models.state') ?? '';
const requests = (name: string) => server.requests.filter((r) => r.path === `/models/${name}`).length;
/** An ISO time to the second, as Azure's SDK writes `se`. */
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
/** The entry with a SAS expiry in its URL (encoded as the SDK does; the server's URL carries `sig=secret`). */
const signedUntil = (entry: DesiredModel, se: string): DesiredModel => ({ ...entry, url: `${entry.url}&se=${encodeURIComponent(se)}` });

async function scoredBy(pumpId: string): Promise<string | null> {
  const seqs = (await agent.pipeline.ingest([{ pumpId, ts: Date.now(), values: normalValues(random, 0) }], 'test')).seqs;
  return agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion;
}

/** Nothing of the signature (`sig=secret`) or the rest of the query in what the agent shows, keeps or logs. */
function expectNoSecret(key: string): void {
  for (const text of [JSON.stringify(status(key)), persisted(), logLines.join('\n')]) {
    expect(text).not.toMatch(/secret|sig=|sv=2024|se=/);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-expired-url-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  server = await ModelServer.start();
  await startAgent();
});

afterAll(async () => {
  await updater?.stop();
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('a desired model whose URL Blob Storage refuses', () => {
  it('refuses a URL whose SAS expired with PW_MODEL_URL_EXPIRED, naming the expiry and the redeploy command, and installs the same version from a fresh URL', async () => {
    const entry = server.add('px-1.onnx', makeModel({ version: 'px-1', source: 'pump-x', seed: 62 }), 'px-1', { kind: 'sas' });
    const expiredAt = iso(Date.now() - 8 * DAY); // deployed 15 days ago; the gateway was offline since
    const expired = signedUntil(entry, expiredAt);
    await desire({ 'pump-x': expired });

    expect(status('pump-x')).toMatchObject({ version: 'px-1', status: 'rejected', activeVersion: null });
    expect(status('pump-x')!.error).toBe(
      `the model URL's signature expired at ${expiredAt} (its "se"); deploy the model again for a fresh URL (pumpwatch-trainer deploy --source pump-x --version px-1): ` +
        `${server.baseUrl}/models/px-1.onnx answered HTTP 403 (AuthenticationFailed)`,
    );
    const rejected = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'model rejected' && l.model === 'pump-x');
    expect(rejected).toMatchObject({ code: 'PW_MODEL_URL_EXPIRED', version: 'px-1' });
    expect(requests('px-1.onnx')).toBe(1); // permanent: the same URL never works again
    expect(await scoredBy('pump-x')).toBe('bundled-1');
    expectNoSecret('pump-x');

    // The same entry read again (a reconnect): not downloaded again.
    await desire({ 'pump-x': expired });
    expect(requests('px-1.onnx')).toBe(1);
    expect(status('pump-x')).toMatchObject({ status: 'rejected' });

    // `deploy` signs a fresh URL for the same version (same sha256 and size): tried, and switched in.
    await desire({ 'pump-x': signedUntil(entry, iso(Date.now() + 7 * DAY)) });
    expect(requests('px-1.onnx')).toBe(2);
    expect(status('pump-x')).toMatchObject({ version: 'px-1', status: 'active', error: null, activeVersion: 'px-1' });
    expect(await scoredBy('pump-x')).toBe('px-1');
  });

  it("names Blob Storage's error code when a URL that has not expired is refused, and tries a new URL for the same version", async () => {
    const entry = server.add('py-1.onnx', makeModel({ version: 'py-1', source: 'pump-y', seed: 63 }), 'py-1', { kind: 'status', status: 403, errorCode: 'AuthorizationPermissionMismatch', times: 1 });
    const validUntil = iso(Date.now() + 7 * DAY);
    await desire({ 'pump-y': signedUntil(entry, validUntil) });

    expect(status('pump-y')).toMatchObject({ version: 'py-1', status: 'rejected' });
    expect(status('pump-y')!.error).toBe(`${server.baseUrl}/models/py-1.onnx answered HTTP 403 (AuthorizationPermissionMismatch); its signature is valid until ${validUntil} (its "se"), so it has not expired`);
    const rejected = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'model rejected' && l.model === 'pump-y');
    expect(rejected).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS' });
    expectNoSecret('pump-y');

    // The storage account's permissions fixed and the model deployed again: a new URL, the same version.
    await desire({ 'pump-y': signedUntil(entry, iso(Date.now() + 7 * DAY + 60_000)) });
    expect(requests('py-1.onnx')).toBe(2);
    expect(status('pump-y')).toMatchObject({ version: 'py-1', status: 'active', error: null });
  });

  it('does not download again, for a fresh URL of the same blob, a model refused for its bytes (refresh-urls signs one every few days)', async () => {
    const entry = server.add('pw-1.onnx', makeModel({ version: 'pw-1', source: 'pump-w', seed: 65 }), 'pw-1');
    const wrong = { ...entry, sha256: 'ab'.repeat(32) }; // the entry names other bytes than the blob holds
    await desire({ 'pump-w': signedUntil(wrong, iso(Date.now() + 3 * DAY)) });
    expect(status('pump-w')).toMatchObject({ version: 'pw-1', status: 'rejected' });
    expect(status('pump-w')!.error).toMatch(/^sha256 of the download is /);
    // Before: every new URL of the same blob was downloaded in full and refused again.
    await desire({ 'pump-w': signedUntil(wrong, iso(Date.now() + 7 * DAY)) });
    expect(requests('pw-1.onnx')).toBe(1);
    expect(status('pump-w')).toMatchObject({ status: 'rejected' });
  });

  it('tries once more a refusal by HTTP status recorded by an agent before refusals carried their URL (an expired URL would hold the version for good)', async () => {
    const entry = server.add('pv-1.onnx', makeModel({ version: 'pv-1', source: 'pump-v', seed: 66 }), 'pv-1', { kind: 'status', status: 403, errorCode: 'AuthenticationFailed', times: 1 });
    const old = signedUntil(entry, iso(Date.now() - DAY));
    await desire({ 'pump-v': old });
    expect(status('pump-v')).toMatchObject({ status: 'rejected' });
    // What an older agent kept: the refusal without the scope it held under.
    const state = JSON.parse(persisted()) as { refused: Record<string, Record<string, unknown>> };
    expect(state.refused['pump-v']!.limits).toEqual(expect.any(String));
    delete state.refused['pump-v']!.limits;
    state.refused['pump-v']!.reason = `${server.baseUrl}/models/pv-1.onnx answered HTTP 403`;
    agent.buffer.setMeta('models.state', JSON.stringify(state));
    await updater.stop();
    await agent.stop();
    await startAgent();
    // refresh-urls (or a deploy) writes a fresh URL for the same version: tried, and switched in.
    await desire({ 'pump-v': signedUntil(entry, iso(Date.now() + 7 * DAY)) });
    expect(requests('pv-1.onnx')).toBe(2);
    expect(status('pump-v')).toMatchObject({ version: 'pv-1', status: 'active', error: null });
  });

  it('ends in the same clear refusal when a stored model no longer loads at a restart and its URL expired meanwhile, and installs it from a fresh URL', async () => {
    const entry = server.add('pz-1.onnx', makeModel({ version: 'pz-1', source: 'pump-z', seed: 64 }), 'pz-1', { kind: 'sas' });
    const expiresAt = Math.ceil((Date.now() + 2000) / 1000) * 1000;
    const deployed = signedUntil(entry, iso(expiresAt));
    await desire({ 'pump-z': deployed });
    expect(status('pump-z')).toMatchObject({ version: 'pz-1', status: 'active' });

    await updater.stop();
    await agent.stop();
    truncateSync(agent.modelStore.pathOf('pump-z', deployed), 100); // a damaged card
    // The gateway stays off until the URL has expired (seconds here, days in the field).
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(expiresAt + 100), { timeout: 5000, interval: 50 });
    await startAgent();
    expect(status('pump-z')).toMatchObject({ version: 'pz-1', status: 'rejected' });
    expect(status('pump-z')!.error).toMatch(/^the stored copy could not be loaded .+; it is downloaded again at the next module twin read/);

    // The twin read after start-up names the same entry: its URL is what the server now refuses.
    await desire({ 'pump-z': deployed });
    expect(requests('pz-1.onnx')).toBe(2);
    expect(status('pump-z')).toMatchObject({ version: 'pz-1', status: 'rejected', activeVersion: null });
    expect(status('pump-z')!.error).toBe(
      `the model URL's signature expired at ${iso(expiresAt)} (its "se"); deploy the model again for a fresh URL (pumpwatch-trainer deploy --source pump-z --version pz-1): ` +
        `${server.baseUrl}/models/pz-1.onnx answered HTTP 403 (AuthenticationFailed)`,
    );
    expectNoSecret('pump-z');

    await desire({ 'pump-z': signedUntil(entry, iso(Date.now() + 7 * DAY)) });
    expect(status('pump-z')).toMatchObject({ version: 'pz-1', status: 'active', error: null });
    expect(await scoredBy('pump-z')).toBe('pz-1');
  });
});
