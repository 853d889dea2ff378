/**
 * bench/episode: what GET /alerts/:seq/episode costs the agent for a long episode. A real buffer
 * (SQLite file) holds one pump alerting every second for N alerts, four others reading normally
 * beside it; the walk (buffer/episodes.ts) bounds the episode from its middle alert. Prints for each
 * N the walk's wall time and its longest piece on the event loop (between two of its pauses), and,
 * as the raw ceiling measured in the same run, one statement counting the same alerts and finding
 * their highest score (index range known in advance, no gap looked for, the loop held throughout).
 * Before 2026-12-07 the page read such an episode itself, 200 alerts (about 100 kB of JSON) a page:
 * the bench prints how many pages that was. Figures only: it never fails on time.
 *
 *   node dist/bench/episode.js [--alerts N[,N…]] [--same-time]
 *
 * `--same-time`: every alert of the flooding pump at one reading time (a sender whose clock stood
 * still), the case where a walk keyed on the time alone rescanned the tie at every step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EPISODE_GAP_MS } from '../agent/http/alerts-routes.js';
import { episodeExtent } from '../buffer/episodes.js';
import { BufferStore } from '../buffer/store.js';
import type { PredictionRow } from '../buffer/types.js';
import { fmt, percentile } from './support.js';

const T0 = Date.UTC(2026, 10, 1);
const OTHERS = ['normal-1', 'normal-2', 'normal-3', 'normal-4'];
const ROUNDS = 5;

function fill(store: BufferStore, alerts: number, sameTime: boolean): number {
  let middle = 0;
  for (let i = 0; i < alerts; i += 10_000) {
    const rows: PredictionRow[] = [];
    for (let j = i; j < Math.min(alerts, i + 10_000); j++) {
      const ts = T0 + j * 1000;
      rows.push({ pumpId: 'flooding', ts: sameTime ? T0 : ts, receivedAt: ts, values: { Pressure: 0.2, Flow: 45 }, score: 2 + (j % 997) / 1000, anomaly: true, modelVersion: 'v1', imputed: false, unscoredReason: null });
      for (const p of OTHERS) rows.push({ pumpId: p, ts, receivedAt: ts, values: { Pressure: 1.4, Flow: 30 }, score: 0.2, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null });
    }
    const seqs = store.appendBatch(rows);
    const k = Math.floor(alerts / 2) - i;
    if (k >= 0 && k < 10_000) middle = seqs[k * (OTHERS.length + 1)]!;
  }
  return middle;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { alerts: { type: 'string', default: '10000,100000,1000000' }, 'same-time': { type: 'boolean', default: false } } });
  const sameTime = values['same-time'];
  const sizes = values.alerts.split(',').map(Number);
  console.log(`bench/episode: one pump alerting ${sameTime ? 'with every alert at one time (a sender whose clock stood still)' : 'every second'}, four others normal beside it; the walk from the middle alert; median of ${ROUNDS} rounds (the first cold)`);
  console.log('alerts      walk (ms)   longest piece (ms)   ceiling: one statement (ms)   pages the page read before');
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-episode-'));
    const store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 64 * 1024 ** 3 });
    store.open();
    try {
      const middle = fill(store, n, sameTime);
      const walks: number[] = [];
      const pieces: number[] = [];
      const ceilings: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        let longest = 0;
        let since = performance.now();
        const began = since;
        const found = await episodeExtent(store, middle, EPISODE_GAP_MS, {
          pause: async () => {
            longest = Math.max(longest, performance.now() - since);
            await new Promise((resolve) => setImmediate(resolve));
            since = performance.now();
          },
        });
        longest = Math.max(longest, performance.now() - since);
        walks.push(performance.now() - began);
        pieces.push(longest);
        if (found.extent === null) throw new Error(`the walk found no episode: ${found.reason}`);
        if (found.extent.count !== n) throw new Error(`the walk found ${found.extent.count} alerts, not ${n}`);
        const c0 = performance.now();
        const floor = store.db
          .prepare('SELECT count(*) AS n, max(score) AS peak FROM readings INDEXED BY readings_anomalies_pump_ts WHERE anomaly = 1 AND pump_id = ? AND ts BETWEEN ? AND ?')
          .get('flooding', T0, T0 + (sameTime ? 0 : n - 1) * 1000) as { n: number };
        ceilings.push(performance.now() - c0);
        if (floor.n !== n) throw new Error(`the ceiling counted ${floor.n} alerts, not ${n}`);
      }
      const med = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
      console.log(
        `${String(n).padEnd(12)}${fmt(med(walks), 1).padStart(9)}   ${fmt(med(pieces), 2).padStart(18)}   ${fmt(med(ceilings), 1).padStart(27)}   ${String(Math.ceil(n / 200)).padStart(26)}`,
      );
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
