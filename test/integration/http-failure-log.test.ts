/**
 * Log lines of the status server while an outage refuses every request the same way: a real agent
 * whose buffer file is corrupt (every POST /readings answered 503), and the real StatusServer with
 * a route that fails, then works.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/main.js';
import { createLogger } from '../../agent/logger.js';
import { StatusServer } from '../../agent/http/server.js';
import { BufferError } from '../../buffer/errors.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel } from '../support/models.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Line = { level: number; msg: string; code?: string; repeats?: number; failures?: number; component?: string };

describe('requests refused during a buffer outage', () => {
  it('write one error line, not one per request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-failure-log-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'buffer.sqlite'), 'not a database\n'.repeat(100));
    const lines: Line[] = [];
    const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info' });
    const agent = new Agent({ config, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Line) }), defaultModelPath: join(dir, 'default-model.onnx') });
    cleanups.push(() => agent.stop());
    await agent.start();
    const url = `http://127.0.0.1:${agent.httpAddress()!.port}`;

    const body = JSON.stringify({ pumpId: 'pump-1', ts: Date.now(), values: { Pressure: 1.4 } });
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    const failed = lines.filter((l) => l.component === 'http' && l.msg.startsWith('request failed'));
    expect(failed).toEqual([expect.objectContaining({ msg: 'request failed: PW_BUFFER_CORRUPT', code: 'PW_BUFFER_CORRUPT' })]); // before: 100 lines
  });
});

describe('the status server\'s log of failed requests', () => {
  it('counts repeats of an outage\'s answer, says when the route answers again, and logs every internal error', async () => {
    const lines: Line[] = [];
    const server = new StatusServer({ token: undefined, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Line) }) });
    let failing = true;
    server.route('POST', '/write', () => {
      if (failing) throw new BufferError('PW_BUFFER_DISK_FULL', 'the disk is full');
      return { status: 202, json: {} };
    });
    server.route('GET', '/bug', () => {
      throw new Error('a bug');
    });
    const addr = await server.start('127.0.0.1', 0);
    cleanups.push(() => server.stop());
    const call = async (method: string, path: string): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${addr.port}${path}`, { method });
      await res.arrayBuffer();
      return res.status;
    };

    for (let i = 0; i < 20; i++) expect(await call('POST', '/write')).toBe(507);
    for (let i = 0; i < 3; i++) expect(await call('GET', '/bug')).toBe(500);
    failing = false;
    expect(await call('POST', '/write')).toBe(202);
    expect(await call('POST', '/write')).toBe(202);
    expect(lines.map((l) => l.msg)).toEqual([
      'request failed: PW_BUFFER_DISK_FULL',
      'request failed',
      'request failed',
      'request failed',
      'POST /write answers again after 20 failures',
    ]);
  });
});
