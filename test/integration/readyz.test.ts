/**
 * GET /readyz (README "HTTP"): `503 PW_NO_MODEL` while no model is active, `200` once one is. The
 * agent listens only once its start-up default model is loaded, so the agent as a process answers
 * 200 from its first answer on; the 503 is seen on the agent's own status server and model manager
 * before its models part has run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel } from '../support/models.js';
import { startAgentProcess } from '../support/process.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-readyz-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}

async function readyz(url: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, json: await res.json() };
}

describe('GET /readyz', () => {
  it('answers 503 PW_NO_MODEL while no model is active, and 200 once the default model is', async () => {
    const dir = tempDir();
    const modelPath = join(dir, 'default-model.onnx');
    writeFileSync(modelPath, makeModel());
    const config = testAgentConfig(join(dir, 'data'));
    const agent = new Agent({ config, logger: createLogger('silent'), defaultModelPath: modelPath });
    // The agent's status server alone: its models part (which loads the default model) has not run.
    const addr = await agent.server.start('127.0.0.1', 0);
    cleanups.push(() => agent.models.releaseAll());
    cleanups.push(() => agent.server.stop());
    const url = `http://127.0.0.1:${addr.port}`;

    expect(await readyz(url)).toEqual({ status: 503, json: { status: 'not ready', code: 'PW_NO_MODEL', error: 'no model is active yet' } });
    await agent.models.loadBundledDefault(modelPath); // a real onnxruntime session
    expect(await readyz(url)).toEqual({ status: 200, json: { status: 'ready' } });
  });

  it('answers 200 from the agent process\'s first answer: it listens only once its default model is loaded', async () => {
    const dir = tempDir();
    const modelPath = join(dir, 'default-model.onnx');
    writeFileSync(modelPath, makeModel());
    const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_DEFAULT_MODEL: modelPath });
    cleanups.push(async () => {
      agent.proc.kill('SIGTERM');
      await agent.exited;
    });
    let first: { status: number; json: unknown } | undefined;
    while (first === undefined) {
      if (agent.proc.exitCode !== null) throw new Error(`agent exited with ${agent.proc.exitCode}:\n${agent.output()}`);
      try {
        first = await readyz(agent.url);
      } catch {
        await new Promise((r) => setTimeout(r, 20)); // not listening yet
      }
    }
    expect(first).toEqual({ status: 200, json: { status: 'ready' } });
  });
});
