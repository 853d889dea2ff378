/**
 * Refused items under the buffer's cap (real SQLite file): those evicted before they went up to
 * rejected/ are counted as such (across a reopen), those already uploaded are not, and the batch
 * planned for upload is never evicted (a retry must send the same rows under the same name).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RejectedSync } from '../../buffer/rejected-sync.js';
import { BufferStore } from '../../buffer/store.js';

const T0 = Date.UTC(2026, 10, 23, 10);

describe('refused items evicted under the cap', () => {
  let dir: string;
  let store: BufferStore;
  const open = (): RejectedSync => {
    store = new BufferStore({ path: join(dir, 'buffer.db'), maxBytes: 1 << 30 });
    store.open();
    return new RejectedSync(store);
  };
  const ids = (): number[] => (store.db.prepare('SELECT id FROM rejected ORDER BY id').pluck().all() as number[]);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-rejected-evict-'));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('counts the evicted items not yet uploaded, never takes the planned batch, and keeps the count across a reopen', () => {
    let sync = open();
    const raw = 'x'.repeat(3000);
    for (let k = 0; k < 20; k++) store.appendRejected(Array.from({ length: 50 }, (_, i) => ({ source: 'http', raw, reason: `bad ${k * 50 + i}`, receivedAt: T0 + k * 50 + i })));
    // The first 100 went up; 101..150 are the batch being uploaded.
    sync.markUploaded({ firstId: 1, lastId: 100, rowCount: 100, blobName: 'rejected/gw/2026/11/23/000000000001-000000000100.jsonl.gz', deviceId: 'gw' });
    const plan = { firstId: 101, lastId: 150, rowCount: 50, blobName: 'rejected/gw/2026/11/23/000000000101-000000000150.jsonl.gz', deviceId: 'gw' };
    sync.persistPlan(plan);
    expect(sync.pending()).toBe(900);

    store.setMaxBytes(1 << 20); // 1000 items of 3 KB do not fit: most are evicted
    store.appendRejected([{ source: 'http', raw: 'last', reason: 'bad 1000', receivedAt: T0 + 1000 }]);
    const left = ids();
    const stats = store.stats();
    expect(stats.evicted.rejected).toBe(1001 - left.length);
    expect(left.length).toBeLessThan(500);
    // The planned batch is whole; the uploaded ones went first, then the oldest not uploaded.
    expect(sync.rowsOf(plan).map((r) => r.id)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));
    expect(left.filter((id) => id <= 100)).toEqual([]);
    const unsentLost = 1001 - 100 - left.length;
    expect(stats.rejectedUnsentEvicted).toBe(unsentLost);

    store.close();
    sync = open();
    expect(store.stats().rejectedUnsentEvicted).toBe(unsentLost);
    expect(sync.planned()).toEqual(plan);
  });
});
