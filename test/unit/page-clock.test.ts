/**
 * The page's gateway clock (agent/page/clock.js, plain ES module run by the browser; imported here
 * as Node runs it): ages are measured on the gateway's clock, whatever this device's clock says.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { clockSkewMs, gatewayNow, noteGatewayTime } from '../../agent/page/clock.js';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { fmtAgo } from '../../agent/page/format.js';

const THREE_HOURS = 3 * 3_600_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('the gateway clock on the page', () => {
  it('takes the middle of the request as the moment of the gateway’s time, and measures ages on it', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const gateway = Date.UTC(2026, 11, 5, 16, 0, 0);
    vi.setSystemTime(gateway + THREE_HOURS + 400); // this device is 3 h fast; the answer took 400 ms
    noteGatewayTime(new Date(gateway + 200).toISOString(), gateway + THREE_HOURS, Date.now());
    expect(clockSkewMs()).toBe(-THREE_HOURS);
    expect(gatewayNow()).toBe(gateway + 400);
    // an alarm that began 25 s before the gateway's now: "25 s ago", not "3 h 0 min ago"
    expect(fmtAgo(new Date(gateway + 400 - 25_000).toISOString())).toBe('25 s ago');
  });

  it('ignores an answer without a readable time', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 11, 5, 16));
    const before = clockSkewMs();
    noteGatewayTime('not a time', Date.now(), Date.now());
    noteGatewayTime(undefined, Date.now(), Date.now());
    expect(clockSkewMs()).toBe(before);
  });
});
