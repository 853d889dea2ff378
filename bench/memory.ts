/**
 * The agent process's memory seen from outside, for bench/ingest: resident pages from /proc
 * (Linux), split into file-backed (node's binary, shared libraries) and anonymous, and the main
 * thread's V8 heap and ArrayBuffers from the agent's `pumpwatch_process_memory_bytes` gauge.
 */
import { readFileSync } from 'node:fs';

/** One sample, in MB. */
export interface MemorySample {
  rss: number;
  anon: number;
  file: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const MB = 1024 * 1024;

function procKb(text: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
}

async function sampleOnce(pid: number, base: string): Promise<MemorySample> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const gauge = (kind: string) => Number(new RegExp(`^pumpwatch_process_memory_bytes\\{kind="${kind}"\\} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN) / MB;
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const rss = procKb(rollup, 'Rss') / 1024;
  const anon = procKb(rollup, 'Anonymous') / 1024;
  return {
    rss, anon, file: rss - anon,
    heapTotal: gauge('heap_total'), heapUsed: gauge('heap_used'), external: gauge('external'), arrayBuffers: gauge('array_buffers'),
  };
}

/** Samples every `everyMs` until stop(): the largest sample, the last one and the kernel's peak RSS (VmHWM). */
export function agentMemorySampler(pid: number, base: string, everyMs = 250) {
  let largest: MemorySample | null = null;
  let inFlight: Promise<void> = Promise.resolve();
  const keep = (s: MemorySample): MemorySample => {
    if (!largest || s.rss > largest.rss) largest = s;
    return s;
  };
  const tick = (): void => {
    inFlight = sampleOnce(pid, base).then(keep, () => undefined).then(() => undefined);
  };
  const timer = setInterval(tick, everyMs);
  return {
    sample: async (): Promise<MemorySample> => keep(await sampleOnce(pid, base)),
    stop: async (): Promise<{ rssPeak: number; atPeak: MemorySample; after: MemorySample }> => {
      clearInterval(timer);
      await inFlight;
      const after = keep(await sampleOnce(pid, base));
      const rssPeak = procKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM') / 1024;
      return { rssPeak, atPeak: largest ?? after, after };
    },
  };
}

const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '?');

/** "RSS 160 MB = file-backed 75 + anonymous 85: V8 heap 47 (used 33), external 6 (ArrayBuffers 4), other native 32". */
export function formatMemory(s: MemorySample): string {
  const native = s.anon - s.heapTotal - s.external;
  return `RSS ${f(s.rss)} MB = file-backed ${f(s.file)} (node, shared libraries) + anonymous ${f(s.anon)}: main-thread V8 heap ${f(s.heapTotal)} (used ${f(s.heapUsed)}), external ${f(s.external)} (ArrayBuffers ${f(s.arrayBuffers)}), other native ≈ ${f(native)} (worker threads, SQLite, onnxruntime, malloc)`;
}
