import { describe, expect, it } from 'vitest';
import { PumpActivity } from '../../agent/edge/pump-activity.js';

const DAY = 86_400_000;

describe('PumpActivity', () => {
  it('lists the most recently active pumps first, and forgets one inactive for longer than the window', () => {
    let now = 0;
    const known = ['a', 'b', 'c'];
    const activity = new PumpActivity({ known: () => known, forgetAfterMs: 30 * DAY, clock: () => now });
    expect(activity.active(['a', 'b'])).toBe(true);
    now = DAY;
    expect(activity.active(['b'])).toBe(false);
    expect(activity.recent()).toEqual(['b', 'c', 'a']); // c: known from the buffer, noticed now

    now = 31 * DAY + 1;
    expect(activity.recent()).toEqual([]);
    now += 1;
    expect(activity.active(['a'])).toBe(true); // forgotten, then active again: listed again
    expect(activity.recent()).toEqual(['a']);
  });

  it('counts a pump known only from the buffer from when its newest reading was received, so a restart does not list an idle pump again', () => {
    const now = 100 * DAY;
    const received: Record<string, number> = { idle: now - 40 * DAY, recent: now - DAY };
    const activity = new PumpActivity({ known: () => ['idle', 'recent', 'unknown'], lastReceived: (id) => received[id] ?? null, forgetAfterMs: 30 * DAY, clock: () => now });
    expect(activity.recent()).toEqual(['unknown', 'recent']); // 'unknown': no reading found, noticed now
  });

  it('drops a pump the engine no longer knows', () => {
    const known = ['a', 'b'];
    const activity = new PumpActivity({ known: () => known, clock: () => 0 });
    activity.active(['a', 'b']);
    known.pop();
    expect(activity.recent()).toEqual(['a']);
  });
});
