/**
 * The V8 flags the agent sets at start (agent/node-flags.ts RUNTIME_V8_FLAGS: the GC settings
 * bench/ingest's RSS figures depend on) are set in the agent as launched: its process, started from
 * the bin as deployed, with a preload that records every v8.setFlagsFromString call. The node flags
 * on its command line are checked against the shebang, the Dockerfile and `npm start` by
 * deployment.test.ts; these are set from inside, so only the running process can tell.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_V8_FLAGS } from '../../agent/node-flags.js';
import { stopAgent } from '../support/agent-http.js';
import { startAgentProcess, type AgentProcess } from '../support/process.js';

let dir: string;
let agent: AgentProcess | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-e2e-v8-flags-'));
});

afterAll(async () => {
  if (agent && agent.proc.exitCode === null && agent.proc.signalCode === null) {
    agent.proc.kill('SIGKILL');
    await agent.exited;
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the agent process', () => {
  it('sets its runtime V8 flags at start, before it serves', async () => {
    const log = join(dir, 'flags.log');
    const hook = join(dir, 'record-flags.cjs');
    // Wraps v8.setFlagsFromString (the ES module binding too) to append each flag to the log, then sets it.
    writeFileSync(
      hook,
      `const v8 = require('node:v8'); const fs = require('node:fs'); const set = v8.setFlagsFromString;
v8.setFlagsFromString = (flags) => { fs.appendFileSync(${JSON.stringify(log)}, flags + '\\n'); return set(flags); };
require('node:module').syncBuiltinESMExports();`,
    );
    writeFileSync(log, '');
    agent = await startAgentProcess({ PUMPWATCH_DATA_DIR: join(dir, 'data') }, undefined, { nodeArgs: ['--require', hook] });
    await agent.waitReady();
    expect(RUNTIME_V8_FLAGS).toContain('--heap-growing-percent=20');
    expect(readFileSync(log, 'utf8').split('\n').filter((l) => l !== '')).toEqual([...RUNTIME_V8_FLAGS]);
    await stopAgent(agent);
  });
});
