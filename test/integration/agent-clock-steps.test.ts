/**
 * The agent records the wall-clock steps its scheduler notices (NTP setting a gateway that booted
 * years behind), so retention ages the rows received before a step by their arrival. A busy gateway
 * (thousands of readings a second, or edgeHub replaying its backlog at boot) took 10 000 readings and
 * more between the step and the check that noticed it: the step was looked for among the newest
 * 10 000 rows only, not found, not recorded and not said, and the next retention run deleted the
 * whole local history from before it. A step the agent cannot record (its buffer not open) is said.
 * A real agent; Date is vitest's fake Date (it advances with real time), timers stay real, as on a
 * gateway where a clock step does not move setTimeout.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import { deleteExpiredSynced } from '../../sync/retention.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel, normalValues, rng } from '../support/models.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

const YEARS = 3 * 365 * 86_400_000;
const SHA = 'c'.repeat(64);
let dir: string;
let agent: Agent | null = null;

afterEach(async () => {
  await agent?.stop();
  agent = null;
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** A started agent on a fresh folder (`prepare` may put things in it first); `nextCheck` resolves at the scheduler's next check of the clocks. */
async function started(prepare: (dataDir: string) => void = () => undefined, atSchedulerStart?: () => void): Promise<{ agent: Agent; lines: LogLine[]; nextCheck: () => Promise<void> }> {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-clock-steps-'));
  prepare(join(dir, 'data'));
  writeFileSync(join(dir, 'default-model.onnx'), makeModel());
  const lines: LogLine[] = [];
  const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info' });
  const a = new Agent({ config, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) }), defaultModelPath: join(dir, 'default-model.onnx') });
  agent = a;
  if (atSchedulerStart !== undefined) {
    const start = a.scheduler.start.bind(a.scheduler);
    a.scheduler.start = () => {
      atSchedulerStart();
      start();
    };
  }
  await a.start();
  let waiting: Array<() => void> = [];
  a.scheduler.onClockCheck(() => {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  });
  return { agent: a, lines, nextCheck: () => new Promise((resolve) => waiting.push(resolve)) };
}

const r = rng(5);
const readings = (n: number, pumpId = 'pump-1') => {
  const now = Date.now();
  return Array.from({ length: n }, (_, k) => ({ pumpId, ts: now - n + k, values: normalValues(r, (now - n + k) / 1000) }));
};

describe('clock steps on a busy gateway', () => {
  it('records a step with 12 000 readings taken on each side of it before the check that noticed it, and retention keeps the rows before it', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: Date.now() - YEARS }); // booted 3 years behind
    const { agent: a, nextCheck } = await started();
    await a.pipeline.ingest(readings(20), 'test');
    await nextCheck(); // the agent notes the buffer's newest row at each check of the clocks
    // Right after a check: 12 000 readings, NTP sets the clock, 12 000 more, all before the next check (5 s).
    for (let b = 0; b < 6; b++) await a.pipeline.ingest(readings(2_000), 'test');
    const batches = new SyncBatches(a.buffer);
    const lastOld = batches.lastSeq();
    vi.setSystemTime(Date.now() + YEARS);
    for (let b = 0; b < 6; b++) await a.pipeline.ingest(readings(2_000), 'test');
    const steps = (): unknown[] => a.buffer.db.prepare('SELECT after_seq AS afterSeq FROM clock_steps').all();
    expect(steps()).toEqual([]); // not noticed yet: the 12 000 readings since the step came first
    await vi.waitFor(() => expect(steps()).toEqual([{ afterSeq: lastOld }]), { timeout: 8_000, interval: 50 }); // before: none
    // All uploaded; the next retention run keeps every row, the 12 020 before the step too.
    const limits = { maxRows: 5_000, maxBytes: 1 << 26, anomalyContextRows: 0 };
    const namer = (pumpId: string, first: number, last: number): string => `readings/${pumpId}/${first}-${last}.jsonl.gz`;
    for (let b = batches.next(limits, namer, Date.now()); b !== null; b = batches.next(limits, namer, Date.now())) batches.markUploaded(b, SHA, Date.now());
    expect(a.buffer.stats()).toMatchObject({ rows: 24_020, unsynced: 0 });
    expect((await deleteExpiredSynced(batches, 72, Date.now())).deleted).toBe(0); // before: 12 020
  }, 60_000);

  it('leaves the rows from before a reboot at 1970 as they came when NTP sets the clock during start-up: a step corrects only the rows of the run that noticed it', async () => {
    const real = Date.now();
    const before = (dataDir: string): void => {
      // Ten rows on the right clock, up to a second ago: then a reboot without a clock battery.
      const store = new BufferStore({ path: join(dataDir, 'buffer.sqlite'), maxBytes: 1 << 30 });
      store.open();
      store.appendBatch(Array.from({ length: 10 }, (_, k) => ({ pumpId: 'pump-1', ts: real - 10_000 + k * 1000, receivedAt: real - 10_000 + k * 1000, values: normalValues(r, k), score: 0.1, anomaly: false, modelVersion: 'v', imputed: false, unscoredReason: null })));
      store.close();
    };
    const boot = Date.UTC(1970, 0, 1, 0, 5);
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: boot });
    // NTP sets the clock while the agent starts, before its scheduler first compares the clocks.
    const { agent: a } = await started(before, () => vi.setSystemTime(Date.now() - boot + real));
    // This run received no row before NTP's step: nothing to correct (the rows up to seq 10 are an earlier run's, on the right clock).
    expect(a.buffer.db.prepare('SELECT count(*) AS n FROM clock_steps').get()).toEqual({ n: 0 });
    expect(a.buffer.receiveTimeCorrection()(10, real - 1000)).toBe(real - 1000);
  }, 30_000);

  it('records a step right after the buffer file was replaced (a restored backup, seqs lower) at the last row on the old clock, not at the newest', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: Date.now() - YEARS });
    const { agent: a, nextCheck } = await started();
    const path = join(dir, 'data', 'buffer.sqlite');
    await a.pipeline.ingest(readings(10), 'test');
    a.buffer.db.prepare('VACUUM INTO ?').run(join(dir, 'backup.sqlite')); // a backup at seq 10
    await a.pipeline.ingest(readings(50), 'test');
    await nextCheck(); // the agent notes seq 60, of the file open now
    // Right after that check: the backup is put back, the agent reopens it (seqs from 11 again)...
    const replaced = a.buffer.openFile();
    renameSync(join(dir, 'backup.sqlite'), path);
    await vi.waitFor(
      () => {
        a.buffer.health();
        expect(a.buffer.openFile()).not.toBeNull();
        expect(a.buffer.openFile()).not.toBe(replaced);
      },
      { timeout: 3_000, interval: 10 },
    );
    // ...takes readings, NTP sets the clock, more readings: all before the next check (5 s).
    await a.pipeline.ingest(readings(4), 'test');
    const batches = new SyncBatches(a.buffer);
    const lastOld = batches.lastSeq();
    expect(lastOld).toBe(14);
    vi.setSystemTime(Date.now() + YEARS);
    await a.pipeline.ingest(readings(10), 'test');
    const steps = (): unknown[] => a.buffer.db.prepare('SELECT after_seq AS afterSeq FROM clock_steps').all();
    await vi.waitFor(() => expect(steps()).toEqual([{ afterSeq: lastOld }]), { timeout: 8_000, interval: 50 }); // before: 24, a row on the new clock
  }, 30_000);

  it('says when a step cannot be recorded because the buffer is not open, and what retention may do', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: Date.now() - YEARS });
    const { lines, nextCheck } = await started((dataDir) => mkdirSync(join(dataDir, 'buffer.sqlite'), { recursive: true })); // a folder where the buffer file should be
    await nextCheck();
    vi.setSystemTime(Date.now() + YEARS);
    await vi.waitFor(() => expect(lines.filter((l) => /could not be recorded/.test(l.msg))).toHaveLength(1), { timeout: 8_000, interval: 50 }); // before: nothing said
    expect(lines.find((l) => /could not be recorded/.test(l.msg))).toMatchObject({
      level: 40,
      component: 'buffer',
      msg: 'the clock step of 26280.0 h could not be recorded (the buffer is not open): retention may delete synced rows received before it early',
    });
  }, 30_000);
});
