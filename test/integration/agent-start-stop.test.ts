/**
 * Agent.start() and Agent.stop() with a real buffer, model session and status server: a stop asked
 * for while the agent starts (the CLI hands it a SIGTERM received during start-up) stops what has
 * started, and nothing starts after it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel } from '../support/models.js';

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-start-stop-'));
  model = join(dir, 'model.onnx');
  writeFileSync(model, makeModel({ version: 'ss-1' }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

describe('a stop asked for while the agent starts', () => {
  it('lets the part starting finish, stops it and starts no other: the buffer is closed and the status endpoint never listens', async () => {
    const agent = new Agent({ config: testAgentConfig(join(dir, 'data-1')), logger: createLogger('silent'), defaultModelPath: model });
    const starting = agent.start();
    const stopping = agent.stop();
    const again = agent.stop(); // a second signal's stop waits for the same one
    await Promise.all([starting, stopping, again]);

    expect(agent.httpAddress()).toBeNull();
    expect(() => agent.buffer.stats()).toThrow('the buffer is not open');
    expect(agent.engine.model('default')).toBeUndefined();
  });

  it('starts and stops again as usual afterwards', async () => {
    const agent = new Agent({ config: testAgentConfig(join(dir, 'data-2')), logger: createLogger('silent'), defaultModelPath: model });
    await agent.start();
    expect(agent.httpAddress()).not.toBeNull();
    expect(agent.engine.model('default')?.version).toBe('ss-1');
    await agent.stop();
    expect(agent.httpAddress()).toBeNull();
    expect(() => agent.buffer.stats()).toThrow('the buffer is not open');
  });
});
