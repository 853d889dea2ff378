import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});
import { RepeatLog } from '../../agent/repeat-log.js';

describe('repeated failure log lines', () => {
  it('keeps one summary a minute when NTP steps the gateway clock back an hour', () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 10, 23, 12) });
    let mono = 0;
    const lines: string[] = [];
    const log = new RepeatLog({
      failure: (_fields, msg) => lines.push(msg),
      recovery: (_fields, msg) => lines.push(msg),
      message: 'micro-batch failed',
      recovered: 'micro-batches commit again',
      monotonic: () => mono,
    });
    log.failed({});
    vi.setSystemTime(Date.now() - 3_600_000); // the wall clock steps back; the interval is not measured on it
    for (let i = 0; i < 12; i++) {
      vi.setSystemTime(Date.now() + 10_000);
      mono += 10_000;
      log.failed({});
    }
    log.succeeded();
    expect(lines).toEqual([
      'micro-batch failed',
      'micro-batch failed (6 more in the last 60 s)',
      'micro-batch failed (6 more in the last 60 s)',
      'micro-batches commit again after 13 failures',
    ]);
  });
});
