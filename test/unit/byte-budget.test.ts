import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../agent/http/byte-budget.js';

const settle = () => new Promise((r) => setImmediate(r));

describe('ByteBudget (request bodies held at once)', () => {
  it('grants shares in arrival order and never more than the budget at once', async () => {
    const budget = new ByteBudget(() => 100);
    const granted: string[] = [];
    const a = await budget.acquire(60);
    const b = budget.acquire(60).then((release) => (granted.push('b'), release));
    const c = budget.acquire(10).then((release) => (granted.push('c'), release));
    await settle();
    // c would fit, but b came first: no request is overtaken (a large one would wait for ever)
    expect(granted).toEqual([]);
    expect(budget.status()).toEqual({ used: 60, waiting: 2 });
    a();
    const releaseB = await b;
    const releaseC = await c;
    expect(granted).toEqual(['b', 'c']);
    expect(budget.status()).toEqual({ used: 70, waiting: 0 });
    releaseB();
    releaseB(); // giving back twice changes nothing
    releaseC();
    expect(budget.status()).toEqual({ used: 0, waiting: 0 });
  });

  it('counts a share larger than the budget as the whole budget, and lets a zero share through', async () => {
    const budget = new ByteBudget(() => 100);
    const all = await budget.acquire(1_000);
    expect(budget.status().used).toBe(100);
    const none = await budget.acquire(0);
    none();
    all();
    expect(budget.status()).toEqual({ used: 0, waiting: 0 });
  });

  it('grows a share only while its bytes fit, and gives them all back at once to the next waiting', async () => {
    const budget = new ByteBudget(() => 100);
    const share = budget.growing();
    expect(share.grow(30)).toBe(true);
    expect(share.grow(30)).toBe(true);
    const waiting = budget.acquire(50);
    expect(share.grow(50)).toBe(false); // it would pass the budget: refused, not waited for
    expect(budget.status()).toEqual({ used: 60, waiting: 1 });
    share.release();
    const release = await waiting;
    expect(budget.status()).toEqual({ used: 50, waiting: 0 });
    release();
  });

  it('refuses to grow a share while a request waits, though its bytes would fit: the waiting go first', async () => {
    const budget = new ByteBudget(() => 100);
    const share = budget.growing();
    expect(share.grow(40)).toBe(true);
    const hold = await budget.acquire(40);
    const waiting = budget.acquire(50); // 40 + 40 + 50 > 100: waits
    expect(share.grow(10)).toBe(false); // 90 would fit, but the declared request came first
    share.release();
    hold();
    const release = await waiting;
    expect(budget.status()).toEqual({ used: 50, waiting: 0 });
    release();
  });
});
