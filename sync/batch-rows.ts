/**
 * A planned batch's rows as the buffer stores them (values still JSON text), for the encoder's
 * fast path: the same rows, in the same order, as SyncBatches.rows(batch), without parsing the
 * values only to serialise them again. Read-only; the query mirrors SyncBatches.rows.
 * (Proposed to move into buffer/batches.ts as `rawRows(batch)`.)
 */
import type { PlannedBatch } from '../buffer/batches.js';
import { ROW_COLUMNS } from '../buffer/rows.js';
import type { BufferStore } from '../buffer/store.js';
import type { RawRow } from './encoder.js';

export function batchRawRows(store: BufferStore, batch: PlannedBatch): RawRow[] {
  return store.db
    .prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ? AND batch_id = ? ORDER BY seq`)
    .all(batch.pumpId, batch.firstSeq, batch.lastSeq, batch.id) as RawRow[];
}
