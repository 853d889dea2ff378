/**
 * The agent process sends nothing to onnxruntime's telemetry: onnxruntime-node 1.30's Linux build
 * otherwise reports to mobile.events.data.microsoft.com and keeps a device id and an offline queue
 * under $HOME/.cache/Microsoft/DeveloperTools/.onnxruntime once a session exists.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel } from '../support/models.js';
import { startAgentProcess } from '../support/process.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-ort-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

describe('the agent process and onnxruntime telemetry', () => {
  it('leaves no onnxruntime telemetry state in HOME once its model session runs, and stops cleanly', async () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    const model = join(dir, 'model.onnx');
    writeFileSync(model, makeModel({ version: 'tele-1' }));
    const agent = await startAgentProcess({ HOME: home, PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_DEFAULT_MODEL: model });
    try {
      await agent.waitReady(); // /readyz: the default model's onnxruntime session is created
      const res = await fetch(`${agent.url}/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 0.4 } }),
      });
      expect(res.status).toBe(202); // scored: the session has run
    } finally {
      agent.proc.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
    expect(existsSync(join(home, '.cache', 'Microsoft')), `HOME holds ${JSON.stringify(readdirSync(home, { recursive: true }))}`).toBe(false);
    expect(agent.output()).not.toMatch(/telemetry/i);
  });
});
