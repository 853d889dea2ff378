/**
 * The report's score chart in a real browser (Chromium, offline): the line breaks at a hole in
 * the scored rows (rows cleaning dropped, a pause) instead of drawing calm readings across it,
 * the hole is shaded, and the time labels stay inside the chart.
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreChart } from '../../trainer/report/svg.js';

const T0 = Date.UTC(2026, 0, 5);
const STEP = 10_000;
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
});

afterAll(async () => {
  await browser?.close();
});

/** 2000 scored rows, 10 s apart, with the 600 rows from row 800 missing (a stuck sensor's run, dropped by cleaning). */
function chartWithHole(): string {
  const timestamps: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < 2600; i++) {
    if (i >= 800 && i < 1400) continue;
    timestamps.push(T0 + i * STEP);
    scores.push(1 + Math.sin(i / 30));
  }
  return scoreChart({ title: 'challenger v1: held-out scores', timestamps, scores: Float32Array.from(scores), threshold: 2.5, spans: [] });
}

describe('report score chart', () => {
  it('breaks the line at a hole in the scored rows, shades it, and keeps every time label inside the chart', async () => {
    const page = await (await browser.newContext({ offline: true, viewport: { width: 1280, height: 400 } })).newPage();
    await page.setContent(`<!doctype html><html><body style="margin:0;width:1000px">${chartWithHole()}</body></html>`);
    // Plain JavaScript run in the page (this project's TypeScript has no DOM types).
    const found = (await page.evaluate(`(() => {
      const svg = document.querySelector('svg');
      // A polyline (one run whatever the holes) counts as one M.
      const path = svg.querySelector('path');
      const d = path ? path.getAttribute('d') : 'M' + (svg.querySelector('polyline')?.getAttribute('points') ?? '').split(' ').join(' L');
      const runs = d.split('M').filter((r) => r.trim() !== '').map((r) => r.split(' L').map((p) => Number(p.split(',')[0])));
      const hole = [...svg.querySelectorAll('rect')].find((r) => r.querySelector('title')?.textContent?.startsWith('no scored rows'));
      const labels = [...svg.querySelectorAll('text')].filter((t) => /^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d$/.test(t.textContent ?? '')).map((t) => t.getBBox());
      return {
        runs: runs.map((xs) => [Math.min(...xs), Math.max(...xs)]),
        hole: hole ? [Number(hole.getAttribute('x')), Number(hole.getAttribute('x')) + Number(hole.getAttribute('width'))] : null,
        labels: labels.map((b) => [b.x, b.x + b.width]),
        width: svg.viewBox.baseVal.width,
      };
    })()`)) as { runs: number[][]; hole: number[] | null; labels: number[][]; width: number };
    // Two runs of line, one on each side of the shaded hole: none crosses it.
    expect(found.runs).toHaveLength(2);
    expect(found.hole).not.toBeNull();
    const [holeFrom, holeTo] = found.hole as number[];
    expect(found.runs[0]![1]).toBeLessThanOrEqual(holeFrom! + 0.1);
    expect(found.runs[1]![0]).toBeGreaterThanOrEqual(holeTo! - 0.1);
    // Five time labels, the first from the left edge on, the last ending inside the right edge.
    expect(found.labels).toHaveLength(5);
    for (const [from, to] of found.labels) {
      expect(from).toBeGreaterThanOrEqual(0);
      expect(to).toBeLessThanOrEqual(found.width);
    }
  });
});
