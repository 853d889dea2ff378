/**
 * The limits of one sync request (sync/deadline.ts), on fake timers: given up when no byte moved
 * for the idle window, not while progress keeps coming, and in any case at the cap; the caller's
 * own abort (a stop) keeps its reason.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { requestCapMs, watched, type RequestWatch } from '../../sync/deadline.js';

/** A request that never ends by itself: it rejects only when its signal aborts, as the SDK does. */
function never(w: RequestWatch, seen: { watch?: RequestWatch }): Promise<never> {
  seen.watch = w;
  return new Promise((_, reject) => w.signal.addEventListener('abort', () => reject(new Error('The operation was aborted.')), { once: true }));
}

const settled = async <T>(p: Promise<T>): Promise<{ value?: T; error?: unknown } | 'pending'> => {
  const out = p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  const pending = Symbol('pending');
  const r = await Promise.race([out, Promise.resolve(pending)]);
  return r === pending ? 'pending' : (r as { value?: T; error?: unknown });
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('a sync request under its limits', () => {
  it('is given up when no byte moved for the idle window, as PW_SYNC_NO_ANSWER', async () => {
    const seen: { watch?: RequestWatch } = {};
    const p = watched('reading the properties of x', { idleMs: 60_000 }, (w) => never(w, seen));
    p.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(await settled(p)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(seen.watch!.signal.aborted).toBe(true); // what destroys the SDK's socket
    await expect(p).rejects.toMatchObject({ name: 'SyncError', code: 'PW_SYNC_NO_ANSWER', message: 'no answer from Blob Storage for 60 s (reading the properties of x): the connection stalled, the request was given up' });
  });

  it('is not cut while bytes keep moving, nor while the body handed over may still drain at the floor rate', async () => {
    const seen: { watch?: RequestWatch } = {};
    const bytes = 20_000;
    const p = watched('uploading b', { idleMs: 10_000, bytes }, (w) => never(w, seen)); // cap: 20 s + 40 s
    p.catch(() => undefined);
    for (let sent = 5000; sent <= bytes; sent += 5000) {
      await vi.advanceTimersByTimeAsync(5_000); // 1 KB/s: a piece every 5 s, never 10 s of silence
      seen.watch!.onProgress({ loadedBytes: sent });
    }
    // All handed to the socket at 20 s: the system may still be sending it, so 10 s of silence is not yet a stall.
    await vi.advanceTimersByTimeAsync(39_000);
    expect(await settled(p)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(p).rejects.toMatchObject({ code: 'PW_SYNC_NO_ANSWER', message: expect.stringMatching(/^Blob Storage took longer than 60 s \(uploading b, 20000 bytes/) as string });
  });

  it('waits the idle window plus the body at the floor rate for an answer once the body is handed over', async () => {
    const seen: { watch?: RequestWatch } = {};
    const p = watched('uploading f', { idleMs: 10_000, bytes: 2_000 }, (w) => never(w, seen));
    p.catch(() => undefined);
    seen.watch!.onProgress({ loadedBytes: 2_000 });
    await vi.advanceTimersByTimeAsync(13_999);
    expect(await settled(p)).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).rejects.toMatchObject({ message: 'no answer from Blob Storage for 14 s (uploading f): the connection stalled, the request was given up' });
  });

  it('is given up at the cap however it trickles: 2 idle windows plus 1 s per 500 bytes', async () => {
    expect(requestCapMs(62_000, 60_000)).toBe(120_000 + 124_000);
    const seen: { watch?: RequestWatch } = {};
    const p = watched('uploading c', { idleMs: 1_000, bytes: 1_000 }, (w) => never(w, seen));
    p.catch(() => undefined);
    for (let t = 0; t < 3_900; t += 500) {
      await vi.advanceTimersByTimeAsync(500);
      seen.watch!.onProgress({ loadedBytes: 1 }); // a byte now and then, never the body
    }
    await vi.advanceTimersByTimeAsync(100);
    await expect(p).rejects.toMatchObject({ code: 'PW_SYNC_NO_ANSWER', message: expect.stringMatching(/^Blob Storage took longer than 4 s \(uploading c, 1000 bytes/) as string });
  });

  it('keeps the caller\'s reason when the caller aborts (the sync stopping), and clears its timers when the request ends', async () => {
    const stop = new AbortController();
    const seen: { watch?: RequestWatch } = {};
    const p = watched('uploading d', { idleMs: 60_000, parent: stop.signal }, (w) => never(w, seen));
    p.catch(() => undefined);
    stop.abort(new Error('sync stopping'));
    await expect(p).rejects.toThrow('sync stopping');
    expect(await watched('uploading e', {}, () => Promise.resolve('done'))).toBe('done');
    expect(vi.getTimerCount()).toBe(0);
  });
});
