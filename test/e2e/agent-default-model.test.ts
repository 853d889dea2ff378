import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelWithoutMetadata } from '../support/broken-models.js';
import { startAgentProcess } from '../support/process.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-model-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

/** Runs the agent with PUMPWATCH_DEFAULT_MODEL=`model`; resolves with its exit code and what it wrote to stderr and stdout. */
async function runWithModel(model: string): Promise<{ code: number | string; stderr: string; output: string }> {
  const agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_DEFAULT_MODEL: model, PUMPWATCH_LOG_LEVEL: 'info' });
  let stderr = '';
  agent.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await agent.exited;
  return { code, stderr, output: agent.output() };
}

describe('a PUMPWATCH_DEFAULT_MODEL that cannot be used', () => {
  it.each([
    ['a missing file', () => join(dir, 'no-such-model.onnx'), 'no such file'],
    ['a folder', () => mkdirAndReturn(join(dir, 'a-folder.onnx')), 'is a folder, not a model file'],
    ['a text file', () => writeAndReturn(join(dir, 'notes.onnx'), 'hello world\n'), 'not an ONNX model: protobuf parse failed: invalid wire type 4 at offset 3'],
    ['an ONNX file without PumpWatch metadata', () => writeAndReturn(join(dir, 'plain.onnx'), modelWithoutMetadata()), 'not a PumpWatch model this agent reads (contract 1 or 2): model metadata lacks "pumpwatch.contract"'],
  ])('stops the agent with exit 2 and one stderr line naming the variable, the path and why: %s', async (_what, make, reason) => {
    const path = make();
    const { code, stderr, output } = await runWithModel(path);
    expect(code).toBe(2);
    expect(stderr).toBe(`pumpwatch-agent: PW_CONFIG_INVALID: invalid configuration: PUMPWATCH_DEFAULT_MODEL=${JSON.stringify(path)}: ${reason}\n`);
    expect(output).not.toContain('agent failed to start');
  });
});

function mkdirAndReturn(path: string): string {
  mkdirSync(path);
  return path;
}

function writeAndReturn(path: string, content: string | Uint8Array): string {
  writeFileSync(path, content);
  return path;
}
