/**
 * The page's number formatting (agent/page/format.js, plain ES module run by the browser; imported
 * here as Node runs it): a score and its threshold shown side by side compare as the numbers do.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { fmtScorePair } from '../../agent/page/format.js';

const pair = fmtScorePair as (score: unknown, threshold: unknown) => [string, string];

describe('a score beside its threshold', () => {
  it('keeps three digits when they tell the two apart, and adds digits until they do', () => {
    expect(pair(0.9057, 3.22722)).toEqual(['0.906', '3.23']);
    expect(pair(3.228, 3.22722)).toEqual(['3.228', '3.227']); // an anomaly: three digits read 3.23 beside 3.23
    expect(pair(3.226, 3.22722)).toEqual(['3.226', '3.227']); // normal
    expect(pair(3.2272201, 3.22722)).toEqual(['3.2272201', '3.22722']);
    expect(pair(3.22722000001, 3.22722)).toEqual(['3.22722', '3.22722']); // beyond 9 digits (float32 scores have 7): shown equal
    expect(pair(2.5, 2.5)).toEqual(['2.5', '2.5']); // exactly the threshold: not an anomaly (score > threshold)
    expect(pair(1235.4, 1234.6)).toEqual(['1235.4', '1234.6']); // whole numbers would read 1235 beside 1235
    expect(pair(5120, 1234.6)).toEqual(['5120', '1235']);
  });

  it('shows a missing score or threshold as a dash', () => {
    expect(pair(null, 3.2)).toEqual(['–', '3.2']);
    expect(pair(1.5, undefined)).toEqual(['1.5', '–']);
  });
});

describe('the chart time axis (agent/page/charts.js timeTicks)', () => {
  // Before, uPlot's own labels read "3:30am" over "12/7/26" whatever the browser's locale.
  it('writes tick times in the locale asked, with the day under the first tick and at a new day', async () => {
    // @ts-expect-error: plain JavaScript module
    const { timeTicks } = (await import('../../agent/page/charts.js')) as { timeTicks: (locale?: string) => (...a: unknown[]) => string[] };
    const at = (iso: string) => Date.parse(iso) / 1000;
    const splits = [at('2026-12-07T03:30:00'), at('2026-12-07T03:31:00'), at('2026-12-07T03:32:00')];
    expect(timeTicks('en-GB')(null, splits, 0, 50, 60)).toEqual(['03:30\n7 Dec', '03:31', '03:32']);
    expect(timeTicks('en-GB')(null, [at('2026-12-07T03:30:10'), at('2026-12-07T03:30:20')], 0, 50, 10)).toEqual(['03:30:10\n7 Dec', '03:30:20']);
    expect(timeTicks('en-GB')(null, [at('2026-12-06T23:00:00'), at('2026-12-07T00:00:00')], 0, 50, 3600)).toEqual(['23:00\n6 Dec', '00:00\n7 Dec']);
    expect(timeTicks('en-GB')(null, [at('2026-12-06T00:00:00'), at('2026-12-07T00:00:00')], 0, 50, 86_400)).toEqual(['6 Dec', '7 Dec']);
    expect(timeTicks('en-US')(null, splits.slice(0, 1), 0, 50, 60)).toEqual(['03:30 AM\nDec 7']);
  });
});
