/**
 * Long-run behaviour: the agent as its own process, as deployed (`node dist/agent/cli.js` with the
 * image's node flags and MALLOC_ARENA_MAX), for `--minutes`, with everything a gateway does at
 * once: simulated pumps at `--rate` Hz each (faults included, so anomalies and alerts), sync to a
 * local Azurite, the IoT Edge client on the local hub, a buffer cap small enough that eviction of
 * synced rows runs all along, the default model and per-pump models swapped through the twin every
 * `--swap-minutes`, and a technician's page open (`/events` stream, `/status` and `/pumps` polled).
 *
 * Prints a sample per interval (memory, file descriptors, threads, buffer, sync) and, from two
 * samples after the buffer first evicted at its cap (else over the second half), the growth per
 * hour of RSS, anonymous memory, V8 heap and descriptors. A leak shows as a steady slope there (a
 * gateway runs for months); a short run's slope also holds steps such as the eviction path's first
 * allocations, so read it with the table. Figures only: nothing passes or fails.
 *
 *   node dist/bench/soak.js [--minutes 20] [--pumps 20] [--rate 25] [--swap-minutes 2] [--cap-mb 64]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startAzurite } from '../agent/azurite.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { packageRoot } from '../agent/paths.js';
import { PumpSimulator } from '../agent/simulator.js';
import { agentMemorySampler, type MemorySample } from './memory.js';
import { fitSimulated, fmt, serveFiles } from './support.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    pumps: { type: 'string', default: '20' },
    rate: { type: 'string', default: '25' },
    'swap-minutes': { type: 'string', default: '2' },
    'cap-mb': { type: 'string', default: '64' },
  },
});
const MINUTES = Number(args.minutes);
const PUMPS = Number(args.pumps);
const RATE = Number(args.rate);
const SWAP_MS = Number(args['swap-minutes']) * 60_000;
const CAP = Number(args['cap-mb']) * 1024 * 1024;
const SAMPLES = 40;
const DEVICE = 'soak-gw';
const MODULE = 'pumpwatch';

/** A generic default as agent/assets/make-default-model.sh makes it (pca on six other pumps), under its own version. */
const defaultModel = (version: string, n: number): Uint8Array =>
  fitSimulated(Array.from({ length: 6 }, (_, i) => new PumpSimulator({ pumpId: `train-${i + 1}`, seed: 9001 + i + 100 * n, startTs: Date.UTC(2026, 0, 1 + i), faults: 'none' })), 4000, { source: 'soak', version, window: 10, algorithm: 'pca' });

/** A per-pump model as the trainer makes it (its default algorithm), on fault-free rows of the agent's own simulated pump `index` (1-based). */
const pumpModel = (version: string, index: number): Uint8Array =>
  fitSimulated([new PumpSimulator({ pumpId: `sim-pump-${index}`, seed: (1_000_003 + (index - 1) * 7919) | 0, startTs: Date.UTC(2026, 0, 1), periodMs: 1000 / RATE, faults: 'none' })], 15_000, { source: 'soak', version, window: 10, algorithm: 'mset' });

interface Sample {
  minute: number;
  mem: MemorySample;
  fds: number;
  threads: number;
  status: any;
}

/** Least-squares slope of y over x (per unit of x). */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** The page, open all along: the live stream read to the end, status and pumps polled every 5 s. */
function technician(base: string): { stop: () => Promise<{ events: number; polls: number; failures: number }> } {
  const abort = new AbortController();
  let events = 0;
  let polls = 0;
  let failures = 0;
  const stream = (async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(`${base}/events`, { signal: abort.signal });
        const reader = res.body!.getReader();
        const text = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          events += (text.decode(value, { stream: true }).match(/^event: /gm) ?? []).length;
        }
      } catch {
        if (!abort.signal.aborted) failures++;
      }
      if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const timer = setInterval(() => {
    for (const path of ['/status', '/pumps']) {
      fetch(`${base}${path}`, { signal: abort.signal }).then(
        async (res) => {
          await res.arrayBuffer();
          if (res.status === 200) polls++;
          else failures++;
        },
        () => void (abort.signal.aborted || failures++),
      );
    }
  }, 5000);
  return {
    stop: async () => {
      clearInterval(timer);
      abort.abort();
      await stream;
      return { events, polls, failures };
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-soak-'));
  const azurite = await startAzurite({ location: join(dir, 'azurite'), inMemory: true });
  const { LocalHub } = await import('../agent/local-hub/index.js');
  const hub = await LocalHub.start();
  const moduleCs = hub.addModule(DEVICE, MODULE);
  writeFileSync(join(dir, 'ca.pem'), hub.ca);

  // Model files: default versions d1, d2, … and per-pump versions, each fitted on another seed.
  const files = new Map<string, Uint8Array>();
  const entry = (name: string, bytes: Uint8Array) => {
    files.set(`/${name}.onnx`, bytes);
    return { version: name, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, name };
  };
  const defaults = [1, 2, 3].map((i) => entry(`d${i}`, defaultModel(`d${i}`, i)));
  // The two pumps that get a model of their own take turns; each model is fitted on that pump.
  const perPump = [1, 2].map((i) => entry(`p${i}`, pumpModel(`p${i}`, i)));
  const server = await serveFiles(files);
  const twinEntry = (e: (typeof defaults)[number]) => ({ version: e.version, url: `${server.url}/${e.name}.onnx`, sha256: e.sha256, size: e.size });

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, join(packageRoot(), 'dist', 'agent', 'cli.js')], {
    env: {
      PATH: process.env.PATH ?? '', ...AGENT_ENV,
      PUMPWATCH_DATA_DIR: join(dir, 'agent'), PUMPWATCH_HTTP_PORT: String(port), PUMPWATCH_LOG_LEVEL: 'warn',
      PUMPWATCH_SIMULATE: String(PUMPS), PUMPWATCH_SIMULATE_RATE_HZ: String(RATE), PUMPWATCH_MAX_PUMPS: String(Math.max(100, PUMPS)),
      PUMPWATCH_SYNC: 'auto', PUMPWATCH_BLOB_CONNECTION_STRING: azurite.connectionString, PUMPWATCH_SYNC_INTERVAL_SECONDS: '5',
      PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: moduleCs, EdgeModuleCACertificateFile: join(dir, 'ca.pem'),
      PUMPWATCH_DEVICE_ID: DEVICE, IOTEDGE_MODULEID: MODULE,
      PUMPWATCH_BUFFER_MAX_BYTES: String(CAP), PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Warnings and errors the agent logs (JSON lines at level warn and above), counted by message.
  const logged = new Map<string, number>();
  let partial = '';
  const onOutput = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      let parsed: { level?: number; msg?: string } = {};
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        // the start-up banner and other plain text: not a log line
      }
      if ((parsed.level ?? 0) < 40) continue;
      const msg = `${parsed.level === 40 ? 'warn' : 'error'}: ${parsed.msg ?? ''}`;
      logged.set(msg, (logged.get(msg) ?? 0) + 1);
    }
  };
  agent.stdout!.on('data', onOutput);
  agent.stderr!.on('data', onOutput);
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (agent.exitCode !== null || i > 600) throw new Error(`agent did not become ready (exit ${agent.exitCode}): ${[...logged.keys()].join('; ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  console.log(
    `bench/soak: the agent process for ${MINUTES} min: ${PUMPS} simulated pumps at ${RATE} Hz (${fmt(PUMPS * RATE)} readings/s, faults included), ` +
      `sync to a local Azurite every 5 s, the local hub, buffer cap ${fmt(CAP / 1024 / 1024)} MB, a twin model change every ${fmt(SWAP_MS / 60_000, 1)} min, the page open`,
  );
  const page = technician(base);
  const memory = agentMemorySampler(agent.pid!, base, 1000);
  const t0 = Date.now();

  // Twin changes: the default model steps through d1, d2, d3, …; two pumps get their own model and
  // lose it again in turn, so sessions are created and released all along.
  let swaps = 0;
  const swapTimer = setInterval(() => {
    swaps++;
    const pumpModels: Record<string, unknown> = swaps % 2 === 1
      ? { 'sim-pump-1': twinEntry(perPump[0]!), 'sim-pump-2': null }
      : { 'sim-pump-1': null, 'sim-pump-2': twinEntry(perPump[1]!) };
    hub.updateDesired(DEVICE, MODULE, { models: { default: twinEntry(defaults[swaps % defaults.length]!), ...pumpModels } });
  }, SWAP_MS);

  const samples: Sample[] = [];
  const every = (MINUTES * 60_000) / SAMPLES;
  console.log('| min | RSS MB | anon MB | heap used MB | external MB | fds | threads | buffer rows | buffer MB | WAL MB | unsynced | uploaded rows | evicted synced | evicted unsynced | scored | default model |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (let k = 1; k <= SAMPLES; k++) {
    await new Promise((r) => setTimeout(r, t0 + k * every - Date.now()));
    if (agent.exitCode !== null) throw new Error(`the agent exited (${agent.exitCode}) during the soak`);
    const status = (await (await fetch(`${base}/status`)).json()) as any;
    const s: Sample = {
      minute: (Date.now() - t0) / 60_000,
      mem: await memory.sample(),
      fds: readdirSync(`/proc/${agent.pid}/fd`).length,
      threads: Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]),
      status,
    };
    samples.push(s);
    const b = status.buffer;
    const byKind = b.evictedByKind ?? {};
    console.log(
      `| ${fmt(s.minute, 1)} | ${fmt(s.mem.rss)} | ${fmt(s.mem.anon)} | ${fmt(s.mem.heapUsed, 1)} | ${fmt(s.mem.external, 1)} | ${s.fds} | ${s.threads} | ${fmt(b.rows)} | ${fmt(b.bytes / 1024 / 1024, 1)} | ${fmt(b.walBytes / 1024 / 1024, 1)} | ` +
        `${fmt(b.unsynced)} | ${fmt(status.sync.uploadedRows ?? 0)} | ${fmt(byKind.synced ?? 0)} | ${fmt((byKind.unsynced ?? 0) + (byKind.anomalies ?? 0))} | ${fmt(status.readings.scored)} | ${status.models.default?.version ?? '-'} ${status.models.default?.status ?? ''} |`,
    );
  }
  clearInterval(swapTimer);
  const pageCounts = await page.stop();
  const mem = await memory.stop();

  // Growth in the steady state: from two samples after the buffer first evicted at its cap (its
  // eviction path then runs all along), else over the second half.
  const capped = samples.findIndex((s) => (s.status.buffer.evictedByKind?.synced ?? 0) > 0);
  const from = capped >= 0 && capped + 2 < samples.length - 4 ? capped + 2 : Math.floor(samples.length / 2);
  const late = samples.slice(from);
  const hours = late.map((s) => s.minute / 60);
  const perHour = (pick: (s: Sample) => number) => slope(hours, late.map(pick));
  const last = samples[samples.length - 1]!;
  const what = from === capped + 2 ? 'from two samples after the buffer first evicted at its cap' : 'over the second half';
  console.log(`\n${what} (minutes ${fmt(late[0]!.minute, 1)}–${fmt(last.minute, 1)}), least-squares growth per hour:`);
  console.log(`  RSS ${fmt(perHour((s) => s.mem.rss), 1)} MB/h, anonymous ${fmt(perHour((s) => s.mem.anon), 1)} MB/h, V8 heap used ${fmt(perHour((s) => s.mem.heapUsed), 1)} MB/h, external ${fmt(perHour((s) => s.mem.external), 1)} MB/h, file descriptors ${fmt(perHour((s) => s.fds), 1)}/h, threads ${fmt(perHour((s) => s.threads), 1)}/h`);
  console.log(`  RSS range in that window: ${fmt(Math.min(...late.map((s) => s.mem.rss)))}–${fmt(Math.max(...late.map((s) => s.mem.rss)))} MB; kernel peak (VmHWM) over the run ${fmt(mem.rssPeak)} MB`);
  const r = last.status.readings;
  console.log(`readings: ${fmt(r.accepted)} accepted, ${fmt(r.rejected)} rejected, ${fmt(r.scored)} scored, ${fmt(r.unscored)} unscored, ${fmt(r.anomalies)} anomalies; ${fmt(last.status.sync.uploadedRows ?? 0)} uploaded in ${fmt(last.status.sync.uploadedBlobs ?? 0)} blobs; offered ${fmt(PUMPS * RATE * MINUTES * 60)}`);
  console.log(`twin changes: ${swaps}; the page: ${fmt(pageCounts.events)} events streamed, ${fmt(pageCounts.polls)} polls answered, ${pageCounts.failures} failed`);
  console.log(`agent log lines at warn or above: ${[...logged].map(([m, n]) => `${n} × "${m}"`).join(', ') || 'none'}`);

  const stopAt = Date.now();
  agent.kill('SIGTERM');
  const code = await new Promise((res) => (agent.exitCode !== null ? res(agent.exitCode) : agent.once('exit', (c, sig) => res(c ?? sig))));
  console.log(`SIGTERM to exit: ${fmt(Date.now() - stopAt)} ms, exit ${String(code)}`);
  await server.close();
  await hub.stop();
  await azurite.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}

await main();
