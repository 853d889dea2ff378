/**
 * bench/field scores seven days of a simulated pump with planned faults and sensor biases through
 * the agent's engine. Its accounting is checked from both ends: a bias of 0 leaves the readings
 * as they were (the "sensor off" half-hours are found no more than normal readings raise alarms),
 * and a sensor reading 50 training standard deviations off is found every time by both algorithms,
 * and by the agent's bundled default model (`--fleet`).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';

const run = promisify(execFile);
const BENCH = join(packageRoot(), 'dist', 'bench', 'field.js');

async function bench(args: string[], models = ['mset', 'mset-rel', 'pca']): Promise<Map<string, string[]>> {
  const { stdout } = await run(process.execPath, [BENCH, '--pumps', '1', ...args], { timeout: 120_000 });
  const rows = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const m = /^([\w-]+) +([\d.]+) +([\d.]+) \([\d.]+\) +(\d.*)$/.exec(line);
    if (m) rows.set(m[1]!, [m[2]!, m[3]!, ...m[4]!.split('|').map((c) => c.trim())]);
  }
  expect([...rows.keys()]).toEqual(models);
  return rows;
}

describe('bench/field', () => {
  it('plans 4 faults and 4 sensor biases a day for 7 days, and finds a sensor 50 standard deviations off every time', async () => {
    const rows = await bench(['--bias-sd', '50']);
    for (const [, cells] of rows) {
      // cavitation, bearing wear, leak, valve: 7 each; sensor off: 28.
      expect(cells.slice(2).map((c) => c.split(',')[0]!.split('/')[1])).toEqual(['7', '7', '7', '7', '28']);
      expect(cells[6]).toMatch(/^28\/28, /);
    }
  }, 60_000);

  it('with a bias of 0 the "sensor off" half-hours are normal readings: found no more often than false alarms', async () => {
    const rows = await bench(['--bias-sd', '0']);
    for (const [, cells] of rows) {
      const [found] = cells[6]!.split(',')[0]!.split('/').map(Number);
      // Each half-hour holds 180 readings; at most as many as the false alarms a day would touch.
      expect(found).toBeLessThanOrEqual(Math.ceil(Number(cells[1]) * 7) + 1);
    }
  }, 60_000);

  it("the agent's bundled default model notices every sensor reading 50 standard deviations off (the model of 2026-11 missed flow, temperatures and vibration)", async () => {
    const rows = await bench(['--fleet', '--bias-sd', '50'], ['bundled', 'mset-fleet']);
    expect(rows.get('bundled')![6]).toMatch(/^28\/28, /);
  }, 120_000);
});
