/**
 * The pending list and the alarms its alerts raised and cleared are saved in one transaction
 * (alerts.ts saveState): a write that fails half-way (here a real SQLite file whose trigger refuses
 * `alerts.open`, as a kill between two writes would leave it) lands neither, never the list alone.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertPublisher, type Alert } from '../../agent/edge/alerts.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { makeModel } from '../support/models.js';

let dir: string;
let path: string;
let buffer: BufferStore;
let engine: InferenceEngine;
const now = Date.UTC(2026, 10, 23, 10);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-atomic-'));
  path = join(dir, 'buffer.sqlite');
  buffer = new BufferStore({ path, maxBytes: 1 << 30 });
  buffer.open();
  engine = new InferenceEngine();
  engine.setModel('default', await LoadedModel.fromBytes(makeModel({ version: 'atomic-1' }), 'test'));
});

afterAll(async () => {
  await engine.model('default')?.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Runs `sql` on the buffer's file through a connection of its own (the agent's stays open). */
function onFile(sql: string): void {
  const db = new Database(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

describe('saving the pending alerts with the alarms they decided', () => {
  it('writes the list and the raised alarm both or neither when the write of the alarms fails', async () => {
    const p = new AlertPublisher({ engine, kv: buffer, deviceId: 'gw-a', send: () => Promise.reject(new Error('not connected to the hub')), minIntervalMs: () => 60_000, sensorMinIntervalMs: () => 3_600_000, logger: createLogger('silent'), clock: () => now, monotonic: () => 0 });
    p.restore();
    onFile(`CREATE TRIGGER refuse_open_insert BEFORE INSERT ON meta WHEN NEW.key = 'alerts.open' BEGIN SELECT RAISE(ABORT, 'alerts.open refused'); END;
            CREATE TRIGGER refuse_open_update BEFORE UPDATE ON meta WHEN NEW.key = 'alerts.open' BEGIN SELECT RAISE(ABORT, 'alerts.open refused'); END;`);
    const rows = await engine.score([{ pumpId: 'pump-1', ts: now, values: { Pressure: 4, Flow: 30, Current: 1.4 } }], now);
    const seqs = buffer.appendBatch(rows);
    p.onCommit(rows, seqs);
    await p.idle();
    // The raise is pending in memory; on the file, neither the list with it nor the alarm (the old two writes left the list alone).
    expect(p.status()).toMatchObject({ pending: 1 });
    const pendingOnFile = (): Alert[] => (JSON.parse(buffer.getMeta('alerts.pending') ?? '[]') as Array<{ alert: Alert }>).map((q) => q.alert);
    expect(pendingOnFile()).toEqual([]);
    expect(buffer.getMeta('alerts.open')).toBeNull();

    // The file takes the alarms again: the next save writes both.
    onFile('DROP TRIGGER refuse_open_insert; DROP TRIGGER refuse_open_update;');
    const next = await engine.score([{ pumpId: 'pump-2', ts: now + 1000, values: { Pressure: 4, Flow: 30, Current: 1.4 } }], now);
    p.onCommit(next, buffer.appendBatch(next));
    await p.idle();
    expect(pendingOnFile().map((a) => [a.pumpId, a.episode])).toEqual([['pump-1', seqs[0]], ['pump-2', seqs[0]! + 1]]);
    expect(JSON.parse(buffer.getMeta('alerts.open')!)).toMatchObject({ 'pump-1': { episode: seqs[0] }, 'pump-2': { episode: seqs[0]! + 1 } });
  });
});
