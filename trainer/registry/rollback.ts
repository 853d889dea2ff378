/** Rollback: best.json goes back to the version promoted before the current one. */
import type { ContainerClient } from '@azure/storage-blob';
import { TrainerError } from '../errors.js';
import { RECORD_SCHEMA, type BestPointer } from './records.js';
import { readBest, readModelRecord, writeBest } from './registry.js';

export async function rollbackBest(container: ContainerClient, source: string, now: Date): Promise<{ from: string; to: BestPointer }> {
  const best = await readBest(container, source);
  if (!best) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${source}": nothing to roll back`);
  const [previous, ...older] = best.pointer.history;
  if (!previous) throw new TrainerError('PW_TRAINER_NO_MODEL', `"${source}" has no earlier best model than ${best.pointer.version}: nothing to roll back to`);
  const record = await readModelRecord(container, source, previous.version);
  const pointer: BestPointer = {
    schema: RECORD_SCHEMA,
    source,
    version: record.version,
    algorithm: record.algorithm,
    sha256: record.model.sha256,
    size: record.model.size,
    promotedAt: now.toISOString(),
    reason: `rollback from ${best.pointer.version}`,
    history: older,
  };
  await writeBest(container, pointer, best.etag);
  return { from: best.pointer.version, to: pointer };
}
