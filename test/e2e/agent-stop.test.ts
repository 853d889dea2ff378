/**
 * How the agent process ends on SIGTERM when things around it are not ready: a signal during
 * start-up, before the agent's own handlers exist (as PID 1 in a container an unhandled SIGTERM is
 * ignored until IoT Edge's SIGKILL), and a hub that accepts the connection and never answers.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeModel } from '../support/models.js';
import { startAgentProcess } from '../support/process.js';
import { startupHold } from '../support/startup-hold.js';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-stop-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'stop-1' }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

describe('SIGTERM to the agent process', () => {
  it('exits 0, having opened nothing, when it comes while the modules load', async () => {
    const hold = startupHold(dir);
    const data = join(dir, 'data-early');
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: data, PUMPWATCH_DEFAULT_MODEL: model, ...hold.env }, undefined, { nodeArgs: hold.nodeArgs });
    try {
      await vi.waitFor(() => expect(existsSync(hold.held)).toBe(true), { timeout: 30_000, interval: 20 });
      agent.proc.kill('SIGTERM');
    } finally {
      hold.release();
    }
    expect(await agent.exited).toBe(0); // not ended by the signal itself
    expect(agent.output()).toContain('pumpwatch-agent: SIGTERM during start-up, before anything was opened: exiting');
    expect(existsSync(join(data, 'buffer.sqlite'))).toBe(false);
    // and onnxruntime was loaded with its telemetry already off (inference/ort-telemetry.ts, imported first)
    expect(JSON.parse(readFileSync(hold.held, 'utf8'))).toEqual({ ORT_DISABLE_TELEMETRY: '1' });
  });
});
