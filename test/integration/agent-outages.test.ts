/**
 * What the agent says (and does) while its buffer is down, when it comes back, and when the disk
 * cap costs data: a real agent in this process, real SQLite files, its real pino log captured.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BufferStore } from '../../buffer/store.js';
import { Agent } from '../../agent/main.js';
import { ConfigError } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { saveState } from '../../inference/model-state.js';
import { ModelStore, sha256Hex } from '../../inference/model-store.js';
import { ModelFileError } from '../../inference/model-file.js';
import { testAgentConfig } from '../support/agent.js';
import { makeModel, normalValues, rng } from '../support/models.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

let dir: string;
const agents: Agent[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const a of agents.splice(0)) await a.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/**
 * An agent on `<dir>/data` with a manual clock and its log lines collected. Its rate-limited log
 * lines measure intervals on performance.now(): a test that counts on them fakes it (see `advance`).
 */
function makeAgent(env: Record<string, string> = {}, defaultModelPath = join(dir, 'default-model.onnx')) {
  const lines: LogLine[] = [];
  const clock = { now: Date.now() };
  const config = testAgentConfig(join(dir, 'data'), { PUMPWATCH_LOG_LEVEL: 'info', ...env });
  const logger = createLogger(config.logLevel, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const agent = new Agent({ config, logger, defaultModelPath, clock: () => clock.now });
  agents.push(agent);
  return { agent, lines, clock };
}

const r = rng(3);
const reading = (pumpId: string, ts: number, extra = 0) => {
  const values: Record<string, number> = normalValues(r, ts / 1000);
  for (let k = 0; k < extra; k++) values[`Sensor_${k}`] = Math.round(r() * 1e6) / 1e3;
  return { pumpId, ts, values };
};
const withMsg = (lines: LogLine[], pattern: RegExp): LogLine[] => lines.filter((l) => pattern.test(l.msg));
/** Moves the agent's manual wall clock and the faked performance.now() together. */
const advance = (clock: { now: number }, ms: number): void => {
  clock.now += ms;
  vi.advanceTimersByTime(ms);
};

describe('a buffer that cannot open at start-up', () => {
  it('says the models will be restored when it opens, logs the failed micro-batches once a minute, and restores the models once it opens', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-outage-'));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    // The previous run left pump-7 on its own model: the file in the model store, the choice in the buffer.
    const pumpModel = makeModel({ version: 'pump-7-v2', seed: 11 });
    await new ModelStore(join(dir, 'data', 'models')).write('pump-7', { version: 'v2', sha256: sha256Hex(pumpModel) }, pumpModel);
    const kept = join(dir, 'kept.sqlite');
    const earlier = new BufferStore({ path: kept, maxBytes: 1 << 30 });
    earlier.open();
    saveState(earlier, { live: { 'pump-7': { version: 'v2', sha256: sha256Hex(pumpModel), previous: { kind: 'none' } } }, shadow: {}, refused: {} });
    earlier.close();
    // That buffer is out of reach now: a folder stands where its file should be.
    const bufferPath = join(dir, 'data', 'buffer.sqlite');
    mkdirSync(bufferPath);

    vi.useFakeTimers({ toFake: ['performance'] });
    const { agent, lines, clock } = makeAgent();
    await agent.start();
    expect(withMsg(lines, /^buffer unavailable/)).toHaveLength(1);
    expect(withMsg(lines, /persisted model state unreadable/)).toEqual([]);
    expect(withMsg(lines, /^buffer not open/)).toMatchObject([
      { level: 40, component: 'models', msg: 'buffer not open: the persisted models will be restored when it opens; starting on the default model' },
    ]);
    expect(agent.models.status()['pump-7']).toBeUndefined();

    // Every micro-batch fails meanwhile: one line, then a summary with the count once a minute.
    for (let i = 0; i < 5; i++) {
      await expect(agent.pipeline.ingest([reading('pump-7', clock.now)], 'test')).rejects.toThrow();
      advance(clock, 1000);
    }
    expect(withMsg(lines, /^micro-batch failed/)).toMatchObject([{ level: 50, component: 'ingest', msg: 'micro-batch failed; its readings were not acknowledged' }]);
    advance(clock, 60_000);
    await expect(agent.pipeline.ingest([reading('pump-7', clock.now)], 'test')).rejects.toThrow();
    expect(withMsg(lines, /^micro-batch failed/)).toHaveLength(2);
    expect(withMsg(lines, /^micro-batch failed/)[1]).toMatchObject({
      level: 50,
      repeats: 5,
      failures: 6,
      msg: 'micro-batch failed; its readings were not acknowledged (5 more in the last 65 s)',
    });

    // The file is back: the next retry opens it and brings back pump-7's model.
    rmSync(bufferPath, { recursive: true });
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(kept + suffix)) renameSync(kept + suffix, bufferPath + suffix);
    await agent.reopenBuffer();
    await agent.models.idle();
    expect(withMsg(lines, /^buffer opened after/)).toMatchObject([{ level: 30, component: 'buffer', msg: expect.stringMatching(/^buffer opened after \d+ attempts$/) }]);
    expect(agent.models.status()['pump-7']).toMatchObject({ status: 'active', version: 'v2' });

    await agent.pipeline.ingest([reading('pump-7', clock.now)], 'test');
    const row = agent.buffer.db.prepare("SELECT model_version FROM readings WHERE pump_id = 'pump-7'").get() as { model_version: string };
    expect(row.model_version).toBe('pump-7-v2');
    expect(withMsg(lines, /^micro-batches commit again/)).toMatchObject([{ level: 30, failures: 6, msg: 'micro-batches commit again after 6 failures' }]);
    expect(withMsg(lines, /^micro-batch failed/)).toHaveLength(2);
  });
});

describe('evictions of unsynced readings', () => {
  it('are logged as a warning at most once a minute with the count since the last line, and exported as a counter', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-evict-'));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    vi.useFakeTimers({ toFake: ['performance'] });
    const { agent, lines, clock } = makeAgent({ PUMPWATCH_BUFFER_MAX_BYTES: '1048576' });
    await agent.start();
    // The test runs the checks itself: the scheduler's own check every 10 real seconds would log
    // the first line part-way through the filling whenever the machine is slow (seen in CI: 512 of 3840).
    await agent.scheduler.stop();
    agent.evictionWatch.check(); // the baseline: nothing evicted yet
    const fill = async (batches: number): Promise<void> => {
      for (let b = 0; b < batches; b++) {
        clock.now += 1000;
        await agent.pipeline.ingest(Array.from({ length: 500 }, (_, k) => reading(`pump-${k % 5}`, clock.now - 500 + k, 20)), 'test');
      }
    };
    const lost = (): number => {
      const e = agent.buffer.stats().evicted;
      return e.unsynced + e.anomalies;
    };

    await fill(10);
    expect(lost()).toBeGreaterThan(0);
    const atCheck = lost(); // a commit of the agent's own (an alert's mark, say) may evict more after the check
    agent.evictionWatch.check();
    const warnings = (): LogLine[] => withMsg(lines, /evicted before they were uploaded/);
    expect(warnings()).toMatchObject([{ level: 40, component: 'buffer', maxBytes: 1048576 }]);
    const first = warnings()[0]!;
    expect(first.evicted).toBe(first.evictedUnsyncedTotal);
    expect(first.evicted).toBeGreaterThanOrEqual(atCheck);
    expect(first.evicted).toBeLessThanOrEqual(lost());
    expect(first.msg).toBe(`${first.evicted} readings were evicted before they were uploaded, to keep the buffer under its disk cap; they are lost`);

    // More evictions within the minute: no new line until the minute is over, then their count.
    const before = lost();
    await fill(4);
    advance(clock, 10_000);
    agent.evictionWatch.check();
    expect(warnings()).toHaveLength(1);
    advance(clock, 60_000);
    agent.evictionWatch.check();
    expect(lost()).toBeGreaterThan(before);
    expect(warnings()).toHaveLength(2);
    const second = warnings()[1]!;
    expect(second.evicted).toBe((second.evictedUnsyncedTotal as number) - (first.evictedUnsyncedTotal as number));
    expect(second.evictedUnsyncedTotal).toBeLessThanOrEqual(lost());
    advance(clock, 60_000);
    agent.evictionWatch.check(); // nothing new: nothing said
    expect(warnings()).toHaveLength(2);

    const { port } = agent.httpAddress()!;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('# TYPE pumpwatch_buffer_evicted_total counter');
    expect(metrics).toMatch(new RegExp(`^pumpwatch_buffer_evicted_total ${agent.buffer.stats().evicted.total}$`, 'm'));
    expect(metrics).toContain('# TYPE pumpwatch_buffer_rows gauge');
  });
});

describe('a micro-batch whose commit fails', () => {
  it('leaves the scoring windows as they were, so its retry scores the readings as if they were sent once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-commit-'));
    const model = makeModel({ version: 'w4', window: 4 });
    writeFileSync(join(dir, 'default-model.onnx'), model);
    const { agent, clock } = makeAgent();
    await agent.start();
    const t0 = clock.now;
    const warm = Array.from({ length: 5 }, (_, i) => reading('pump-w', t0 + i * 1000));
    const retried = Array.from({ length: 3 }, (_, i) => reading('pump-w', t0 + (5 + i) * 1000));
    await agent.pipeline.ingest(warm, 'test');
    // A real SQLite failure: every insert into readings aborts until the trigger is dropped.
    agent.buffer.db.exec("CREATE TRIGGER fail_readings BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END");
    await expect(agent.pipeline.ingest(retried, 'test')).rejects.toThrow(/simulated disk failure/);
    agent.buffer.db.exec('DROP TRIGGER fail_readings');
    await agent.pipeline.ingest(retried, 'test');
    const stored = (agent.buffer.db.prepare("SELECT score FROM readings WHERE pump_id = 'pump-w' ORDER BY seq").all() as Array<{ score: number | null }>).map((r) => r.score);

    const reference = new InferenceEngine();
    const loaded = await LoadedModel.fromBytes(model, 'reference');
    try {
      reference.setModel('default', loaded);
      const expected = (await reference.score([...warm, ...retried], 0)).map((r) => r.score);
      expect(stored).toHaveLength(8);
      expect(stored.slice(5).every((s) => typeof s === 'number')).toBe(true);
      expect(stored.slice(0, 3)).toEqual([null, null, null]); // the window of 4 filling
      for (let i = 3; i < 8; i++) expect(stored[i], `reading ${i}`).toBeCloseTo(expected[i]!, 5);
    } finally {
      await loaded.release();
    }
  });
});

describe('scoring windows across a restart', () => {
  it('are full at the first reading after a quick restart, and fill again when that reading comes after a pause', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-restart-'));
    const model = makeModel({ version: 'w4', window: 4 });
    writeFileSync(join(dir, 'default-model.onnx'), model);
    const first = makeAgent();
    await first.agent.start();
    const t0 = first.clock.now;
    const before = Array.from({ length: 6 }, (_, i) => reading('pump-r', t0 + i * 1000));
    await first.agent.pipeline.ingest(before, 'test');
    await first.agent.stop();
    agents.splice(0);

    const second = makeAgent();
    await second.agent.start();
    const next = reading('pump-r', t0 + 6000);
    await second.agent.pipeline.ingest([next], 'test');
    const late = reading('pump-r', t0 + 6000 + 3 * 3_600_000); // back after 3 h: a pause
    await second.agent.pipeline.ingest([late], 'test');
    const rows = second.agent.buffer.predictions('pump-r', { limit: 2 });

    const reference = new InferenceEngine();
    const loaded = await LoadedModel.fromBytes(model, 'reference');
    try {
      reference.setModel('default', loaded);
      const expected = await reference.score([...before, next], 0);
      expect(rows[0]!.score).toBeCloseTo(expected[6]!.score!, 5); // as if the agent had never stopped
    } finally {
      await loaded.release();
    }
    expect(rows[1]).toMatchObject({ score: null, unscoredReason: 'window filling: 1 of 4 readings' });
  });
});

describe('the pump limit (PUMPWATCH_MAX_PUMPS)', () => {
  it('refuses readings of a pump beyond the limit with the reason, keeps them, and counts the buffer\'s pumps after a restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-pumps-'));
    writeFileSync(join(dir, 'default-model.onnx'), makeModel());
    const first = makeAgent({ PUMPWATCH_MAX_PUMPS: '2' });
    await first.agent.start();
    const t0 = first.clock.now;
    const res = await first.agent.pipeline.ingest([reading('pump-a', t0), reading('pump-b', t0), reading('pump-c', t0), reading('pump-a', t0 + 1000)], 'test');
    expect(res.accepted).toBe(3);
    expect(res.rejected).toEqual([
      { index: 2, error: 'pumpId: "pump-c" would be a new pump, and this gateway already takes readings of 2 pumps, the most PUMPWATCH_MAX_PUMPS (2) allows' },
    ]);
    expect(first.agent.buffer.stats().rejected).toBe(1);
    await first.agent.stop();
    agents.splice(0);

    // After a restart the pumps of the buffer's rows count: pump-c is still one too many, pump-b is known.
    const second = makeAgent({ PUMPWATCH_MAX_PUMPS: '2' });
    await second.agent.start();
    const again = await second.agent.pipeline.ingest([reading('pump-c', t0 + 2000), reading('pump-b', t0 + 2000)], 'test');
    expect(again).toMatchObject({ accepted: 1, rejected: [{ index: 0, error: expect.stringMatching(/^pumpId: "pump-c" would be a new pump/) }] });
    await second.agent.stop();
    agents.splice(0);

    const raised = makeAgent({ PUMPWATCH_MAX_PUMPS: '3' });
    await raised.agent.start();
    expect(await raised.agent.pipeline.ingest([reading('pump-c', t0 + 3000)], 'test')).toMatchObject({ accepted: 1, rejected: [] });
  });
});

describe('the default model file', () => {
  it('refuses a broken bundled model naming the file (not a configuration error: exit 1)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bundled-'));
    const broken = join(dir, 'bundled.onnx');
    writeFileSync(broken, 'hello world\n');
    const { agent } = makeAgent({}, broken);
    const failure = await agent.start().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ModelFileError);
    expect(failure).not.toBeInstanceOf(ConfigError);
    expect((failure as Error).message).toBe(`model file ${broken}: not an ONNX model: protobuf parse failed: invalid wire type 4 at offset 3`);
  });
});
