/**
 * A buffer cap larger than the disk: the agent says so when the buffer opens (the disk would fill
 * before the cap rules), with both figures; a cap that fits says nothing. A real agent, a real
 * SQLite file, the filesystem's own statfs figures.
 */
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
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
