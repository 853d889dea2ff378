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

  it('drops a pump the engine no longer knows', () => {
    const known = ['a', 'b'];
    const activity = new PumpActivity({ known: () => known, clock: () => 0 });
    activity.active(['a', 'b']);
    known.pop();
    expect(activity.recent()).toEqual(['a']);
  });
});
