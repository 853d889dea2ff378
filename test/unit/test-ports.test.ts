/**
 * The tests' own port allocator (test/support/ports.ts): what makes a child's port safe from the
 * kernel handing it to an outgoing connection first.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ephemeralLow, freePort, portSlice } from '../support/ports.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe('test ports', () => {
  it('draws below the ephemeral range, in a slice of its own for each worker', () => {
    const low = ephemeralLow();
    const one = portSlice(1);
    const two = portSlice(2);
    expect(one.to).toBeLessThanOrEqual(low);
    expect(two.to).toBeLessThanOrEqual(low);
    expect(one.to <= two.from || two.to <= one.from).toBe(true);
    expect(portSlice(Number(process.env.VITEST_POOL_ID ?? 1)).from).toBeGreaterThanOrEqual(20_000);
  });

  it('never hands out the same port twice, nor one another program listens on', async () => {
    const { from, to } = portSlice();
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(from);
      expect(port).toBeLessThan(to);
      expect(seen.has(port)).toBe(false);
      seen.add(port);
    }
    // The ports just after the last one handed out, taken by listeners: the next port skips them.
    const last = [...seen].at(-1)!;
    const taken: number[] = [];
    for (let p = last + 1; p < Math.min(to, last + 4); p++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, '127.0.0.1', resolve);
      });
      servers.push(server);
      taken.push(p);
    }
    const port = await freePort();
    expect(taken).not.toContain(port);
    expect(seen.has(port)).toBe(false);
  });
});
