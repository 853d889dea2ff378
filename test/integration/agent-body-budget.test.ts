/**
 * Bodies held at once are bounded (agent/http/byte-budget.ts): with a small body limit, concurrent
 * posts that together exceed it wait for their turn and are all committed, none refused (the
 * bound itself: test/unit/byte-budget.test.ts). A chunked body counts as the bytes it has sent, so
 * one client dripping one holds no other client up.
 */
import Database from 'better-sqlite3';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { normalValues, rng } from '../support/models.js';

let t: TestAgent;

beforeAll(async () => {
  t = await startTestAgent({ PUMPWATCH_MAX_BODY_BYTES: '8192' });
});

afterAll(async () => {
  await t.stop();
});

describe('POST /readings under a body budget', () => {
  it('commits every reading of 12 concurrent posts whose bodies together are 4 times the budget', async () => {
    const r = rng(4);
    const bodies = Array.from({ length: 12 }, (_, k) =>
      JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ pumpId: `budget-${k}`, ts: Date.now(), values: normalValues(r, i) }))),
    );
    const total = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
    expect(total).toBeGreaterThan(4 * 8192);
    expect(Math.max(...bodies.map((b) => Buffer.byteLength(b)))).toBeLessThan(8192);
    const statuses = await Promise.all(
      bodies.map(async (body) => {
        const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses).toEqual(Array(12).fill(202));
    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) AS n FROM readings WHERE pump_id LIKE 'budget-%'").get() as { n: number }).n).toBe(360);
    } finally {
      db.close();
    }
  });
});

/**
 * A raw POST /readings whose body is sent by hand: resolves once the agent has taken the request
 * (its 100 Continue is sent as the route starts, which claims the request's share before returning);
 * `closed` once the agent answered (the request asks it to close the connection after).
 */
async function openPost(url: string, headers: string): Promise<{ socket: Socket; answer: () => string; closed: Promise<void> }> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (d: string) => {
      text += d;
      if (text.includes('100 Continue')) resolve();
    });
    socket.write(`POST /readings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n${headers}\r\n`);
  });
  return { socket, closed, answer: () => text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '') };
}

const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

async function postOne(pumpId: string): Promise<number> {
  const res = await fetch(`${t.url}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pumpId, ts: Date.now(), values: normalValues(rng(5), 0) }) });
  await res.arrayBuffer();
  return res.status;
}

describe('POST /readings with a chunked body', () => {
  it('answers another client\'s post while a chunked body is still dripping in, then takes the chunked one too', async () => {
    const drip = await openPost(t.url, 'Transfer-Encoding: chunked\r\n');
    try {
      drip.socket.write(chunk(' '.repeat(1000)));
      drip.socket.write(chunk(' '.repeat(1000)));
      // Before: the chunked body counted as the whole budget, and this post waited until it ended (or timed out: 408).
      expect(await postOne('drip-beside')).toBe(202);
      expect(drip.answer()).toBe('');
      drip.socket.write(chunk(JSON.stringify({ pumpId: 'drip', ts: Date.now(), values: normalValues(rng(6), 0) })) + '0\r\n\r\n');
      await drip.closed;
      expect(drip.answer()).toMatch(/^HTTP\/1\.1 202 /);
    } finally {
      drip.socket.destroy();
    }
    const db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) AS n FROM readings WHERE pump_id IN ('drip', 'drip-beside')").get() as { n: number }).n).toBe(2);
    } finally {
      db.close();
    }
  });

  /**
   * A declared body that holds the budget (8000 of 8192 bytes) while a chunked post is opened
   * beside it; `chunked` runs on that post, then the declared body is sent and must be stored.
   */
  async function besideFullBudget(pumpId: string, seed: number, chunked: (post: Awaited<ReturnType<typeof openPost>>) => Promise<void>): Promise<void> {
    const body = JSON.stringify({ pumpId, ts: Date.now(), values: normalValues(rng(seed), 0) }).padEnd(8000, ' ');
    const declared = await openPost(t.url, `Content-Length: ${Buffer.byteLength(body)}\r\n`);
    const post = await openPost(t.url, 'Transfer-Encoding: chunked\r\n');
    try {
      await chunked(post);
      declared.socket.write(body);
      await declared.closed;
      expect(declared.answer()).toMatch(/^HTTP\/1\.1 202 /);
    } finally {
      declared.socket.destroy();
      post.socket.destroy();
    }
  }

  it('refuses a chunked body with 503 and Retry-After when its bytes no longer fit the budget, and lets the declared one finish', async () => {
    await besideFullBudget('declared', 7, async (chunked) => {
      chunked.socket.write(chunk(' '.repeat(1000)));
      await chunked.closed;
      expect(chunked.answer()).toMatch(/^HTTP\/1\.1 503 /);
      expect(chunked.answer()).toMatch(/\r\nretry-after: 1\r\n/i);
      expect(chunked.answer()).toContain('"code":"PW_BODY_BUDGET_FULL"');
    });
  });

  it('lets a refused chunked client that is still writing read its 503: the connection is read on for a moment, not reset', async () => {
    // Before: the agent closed the connection as soon as it answered; the client's next chunk then
    // got a reset, and a reset loses the answer the client had not read yet (ECONNRESET instead of
    // the 503 telling it to retry: 56 of 300 chunked clients under budget pressure).
    await besideFullBudget('declared-2', 8, async (chunked) => {
      let error: unknown = null;
      chunked.socket.on('error', (err) => (error = err));
      // The client is busy writing and reads its answer only afterwards (the kernel holds it until then).
      chunked.socket.pause();
      chunked.socket.write(chunk(' '.repeat(1000)));
      for (let i = 0; i < 25 && !chunked.socket.destroyed; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        chunked.socket.write(chunk(' '.repeat(1000)));
      }
      chunked.socket.end('0\r\n\r\n');
      chunked.socket.resume();
      await chunked.closed;
      expect(error).toBeNull();
      expect(chunked.answer()).toMatch(/^HTTP\/1\.1 503 /);
      expect(chunked.answer()).toContain('"code":"PW_BODY_BUDGET_FULL"');
    });
  });
});
