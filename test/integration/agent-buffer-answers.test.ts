/**
 * The agent and a buffer it cannot use as configured: what the HTTP routes answer while the file
 * is corrupt, and the warnings at open when the disk cannot hold the cap (the filesystem's own
 * statfs figures) and when the gateway clock reads earlier than the buffer's newest reading. A real agent in this process, real SQLite files, its status server on a free port.
 */
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel } from '../support/models.js';

let dir: string;
let agent: Agent | null = null;

afterEach(async () => {
  await agent?.stop();
  agent = null;
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('a corrupt buffer file', () => {
  it('is answered to POST /readings and GET predictions with a 503 that says what was not done and where the reason is', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-answers-'));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'buffer.sqlite'), 'not a database, but a text file of the same name\n'.repeat(100));
    const config = testAgentConfig(join(dir, 'data'));
    agent = new Agent({ config, logger: createLogger(config.logLevel), defaultModelPath: join(dir, 'default-model.onnx') });
    await agent.start();
    const url = `http://127.0.0.1:${agent.httpAddress()!.port}`;

    const health = (await (await fetch(`${url}/healthz`)).json()) as { checks: Record<string, string> };
    expect(health.checks.buffer).toMatch(/^PW_BUFFER_CORRUPT: .* is not a valid database/);
    // The answer names the open error (the store hands it on as the cause of PW_BUFFER_CLOSED).
    const reason = /^the buffer is not open: .* is not a valid database \(file is not a database\) \[SQLITE_NOTADB\]; this needs an operator \(it does not clear by itself\): restore the file or move it aside/;
    const body = JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 1.4 } });
    const post = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const posted = (await post.json()) as { code: string; error: string };
    expect(post.status).toBe(503);
    expect(posted.code).toBe('PW_BUFFER_CORRUPT');
    expect(posted.error).toMatch(reason);
    expect(posted.error).toMatch(/; nothing was stored, retry once it is fixed$/);
    const get = await fetch(`${url}/pumps/pump-1/predictions`);
    const got = (await get.json()) as { code: string; error: string };
    expect(get.status).toBe(503);
    expect(got.code).toBe(posted.code);
    expect(got.error).toMatch(reason);
    expect(got.error).toMatch(/; nothing could be read, retry once it is fixed$/);
  });
});

async function start(maxBytes: number): Promise<Array<{ msg: string; maxBytes?: number; diskRoomBytes?: number }>> {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-disk-room-'));
  writeFileSync(join(dir, 'model.onnx'), makeModel());
  const lines: Array<{ msg: string }> = [];
  const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info', PUMPWATCH_BUFFER_MAX_BYTES: String(maxBytes) });
  agent = new Agent({ config, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) }), defaultModelPath: join(dir, 'model.onnx') });
  await agent.start();
  return lines.filter((l) => l.msg.startsWith('the disk can hold'));
}

describe('a buffer cap the disk cannot hold', () => {
  it('is named when the buffer opens, with the room the disk has', async () => {
    const fs = statfsSync(tmpdir());
    const free = fs.bavail * fs.bsize;
    const cap = Math.min(Number.MAX_SAFE_INTEGER, Math.max(free * 4, 2 ** 50));
    const warned = await start(cap);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/^the disk can hold \d+ MiB of buffer, less than its cap of \d+ MiB \(PUMPWATCH_BUFFER_MAX_BYTES\): when the disk is full the oldest unsent normal readings are evicted as under the cap/);
    expect(warned[0]!.maxBytes).toBe(cap);
    expect(warned[0]!.diskRoomBytes).toBeLessThan(cap);
    expect(warned[0]!.diskRoomBytes).toBeGreaterThan(free / 2);
  });

  it('is not mentioned when the cap fits', async () => {
    expect(await start(64 * 1024 * 1024)).toEqual([]);
  });
});

describe('a gateway clock behind the buffer', () => {
  it('is named when the buffer opens: a restart on a clock a day behind the newest reading received', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-clock-behind-'));
    writeFileSync(join(dir, 'model.onnx'), makeModel());
    const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info' });
    const run = async (clock: () => number): Promise<Array<{ msg: string; newestReceivedAt?: string }>> => {
      const lines: Array<{ msg: string }> = [];
      agent = new Agent({ config, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) }), defaultModelPath: join(dir, 'model.onnx'), clock });
      await agent.start();
      return lines.filter((l) => l.msg.startsWith('the gateway clock reads'));
    };
    const now = Date.now();
    expect(await run(() => now)).toEqual([]);
    await agent!.pipeline.ingest([{ pumpId: 'pump-1', ts: now, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } }], 'test');
    await agent!.stop();
    const behind = now - 86_400_000;
    const warned = await run(() => behind);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toBe(
      `the gateway clock reads ${new Date(behind).toISOString()}, 24.0 h earlier than the newest reading this buffer received (${new Date(now).toISOString()}): it is wrong now or was before; readings are judged against it (PUMPWATCH_MAX_FUTURE_SECONDS) until it is set`,
    );
  });
});
