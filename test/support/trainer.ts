/**
 * What the trainer's tests share: a command run through the CLI's entry point (runCli) with what
 * it prints collected, the context it runs in (an Azurite container, a clock, the local hub's
 * twins), and readings uploaded to Azurite as the agent's sync uploads them (gzip JSON-lines
 * batches, named and tagged by sync/layout.ts and sync/encoder.ts), so that `train` reads what it
 * reads in the field.
 */
import type { ContainerClient } from '@azure/storage-blob';
import iothub from 'azure-iothub';
import type { LocalHub } from '../../agent/local-hub/index.js';
import type { Reading, StoredRow } from '../../buffer/types.js';
import { batchMetadata, encodeRows } from '../../sync/encoder.js';
import { labelBlobName, toLabelRecord } from '../../sync/labels-upload.js';
import { readingsBlobName } from '../../sync/layout.js';
import { withIdleLimit } from '../../trainer/cloud/blob-limits.js';
import type { CommandContext, TwinRegistry } from '../../trainer/cloud/context.js';
import { runCli } from '../../trainer/commands/index.js';
import { createProgress } from '../../trainer/progress.js';
import { EvaluationRecordSchema, type EvaluationRecord } from '../../trainer/registry/records.js';
import { prepareData, type Prepared, type PrepareOptions } from '../../trainer/train/prepare.js';
import { rng } from './models.js';

export interface TrainerRun {
  code: number;
  /** stdout, one line per line printed. */
  out: string;
  err: string;
}

/** Runs `pumpwatch-trainer <args>` in this process (runCli, the CLI's entry point), collecting what it prints. */
export async function runTrainer(args: string[], ctx: CommandContext): Promise<TrainerRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, ctx);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * A command's context: `container` for the readings and labels, `models` for the registry (the same
 * container unless given: the trainer's code takes whatever container it is handed, and most tests
 * look at one; the CLI's own context refuses one container for both, see cloud/context.ts), the
 * clock `now` (a fixed time, or a function), and the twin registry (without one, a command that
 * reaches IoT Hub fails: the test never deploys). `idleMs`: the idle limit of the containers'
 * requests (60 s by default).
 */
export function trainerContext(
  container: ContainerClient,
  opts: { now: Date | (() => Date); registry?: TwinRegistry; isTTY?: boolean; idleMs?: number; models?: ContainerClient },
): CommandContext {
  const { now, registry } = opts;
  const models = opts.models ?? container;
  if (opts.idleMs !== undefined) for (const c of new Set([container, models])) withIdleLimit(c, opts.idleMs);
  return {
    env: {},
    container: () => container,
    models: () => models,
    registry: () => {
      if (registry === undefined) throw new Error('no registry in this test');
      return registry;
    },
    now: typeof now === 'function' ? now : () => new Date(now.getTime()),
    isTTY: opts.isTTY ?? false,
  };
}

/** The local hub's module twins as the trainer reaches them: the real azure-iothub Registry (HTTPS REST, ETags, queries). */
export function hubRegistry(hub: LocalHub): TwinRegistry {
  return hub.attachRegistry(iothub.Registry.fromConnectionString(hub.serviceConnectionString())) as unknown as TwinRegistry;
}

/** The last line printed: a command's error message, after its progress lines. */
export const lastLine = (text: string): string | undefined => text.split('\n').at(-1);

/**
 * The challenger's version in `train`'s first line for `source`: `promoted V (…`, `kept live V (…):
 * the challenger is that very version`, or `kept live L; challenger V (…) not promoted (…)` (`kept
 * no live model; challenger V …`); of any source when none is given. Throws when the line is not there.
 */
export function challengerVersion(out: string, source = '\\S+'): string {
  const m = new RegExp(`^${source}: (?:promoted|kept (?:live \\S+; challenger|no live model; challenger|live)) (\\S+) \\(`, 'm').exec(out);
  if (!m) throw new Error(`no first line of train for ${source} in:\n${out}`);
  return m[1]!;
}

/** A technician's confirmed-fault label over [fromTs, toTs] of `pumpId`, uploaded as gateway `deviceId` uploads it. */
export async function uploadConfirmedFault(container: ContainerClient, deviceId: string, f: { id: string; pumpId: string; fromTs: number; toTs: number; createdAt: number }): Promise<void> {
  const label = { ...f, kind: 'confirmed-fault' as const, faultType: 'other' as const, note: null, alertSeq: null, author: 'tech', synced: false };
  const body = JSON.stringify(toLabelRecord(deviceId, label));
  await container.getBlockBlobClient(labelBlobName(deviceId, label)).upload(body, body.length);
}

/** A reading as the agent buffers it before a model scores it, received when it was measured. */
export function unscoredRow(pumpId: string, seq: number, ts: number, values: Record<string, number | null>): StoredRow {
  return { seq, pumpId, ts, receivedAt: ts, values, score: null, anomaly: null, modelVersion: null, imputed: false, unscoredReason: null };
}

/** Uploads the rows of one pump from one gateway as one batch, named and tagged as the agent's sync does. */
export async function uploadBatch(container: ContainerClient, deviceId: string, rows: readonly StoredRow[]): Promise<void> {
  const enc = await encodeRows(rows, deviceId);
  const first = rows[0]!;
  const last = rows.at(-1)!;
  const pumpId = first.pumpId;
  await container
    .getBlockBlobClient(readingsBlobName(pumpId, deviceId, first.seq, last.seq, first.ts))
    .upload(enc.body, enc.body.length, { metadata: batchMetadata(enc, { agentVersion: 'test', deviceId, pumpId, firstSeq: first.seq, lastSeq: last.seq }) });
}


/**
 * One pump's readings uploaded as one batch of gateway `gw-1` (unscored, seq from 1), then read back
 * through the trainer's own prepareData over `range`, with no progress shown: what `train` cleans
 * and trains on from them.
 */
export async function preparedReadings(container: ContainerClient, readings: readonly Reading[], range: { source: string; from: number; to: number }, options?: PrepareOptions): Promise<Prepared> {
  await uploadBatch(container, 'gw-1', readings.map((r, k) => unscoredRow(r.pumpId, k + 1, r.ts, r.values as Record<string, number | null>)));
  return prepareData(container, range, createProgress({ line: () => undefined }, false, 'test'), options);
}
/**
 * Uploads `count` readings of one pump, one every `step` ms (default 20 s) from `from`, with
 * sequence numbers from `seq0` (default 1), in batches of `batch` rows (default 400).
 * `values(i)` is called once per reading, in order.
 */
export async function seedReadings(
  container: ContainerClient,
  pumpId: string,
  deviceId: string,
  from: number,
  count: number,
  values: (i: number) => Record<string, number | null>,
  opts: { seq0?: number; batch?: number; step?: number } = {},
): Promise<void> {
  const { seq0 = 1, batch = 400, step = 20_000 } = opts;
  for (let start = 0; start < count; start += batch) {
    const rows: StoredRow[] = [];
    for (let k = start; k < Math.min(count, start + batch); k++) rows.push(unscoredRow(pumpId, seq0 + k, from + k * step, values(k)));
    await uploadBatch(container, deviceId, rows);
  }
}

/**
 * A pump at operating point `level`: flow drives pressure and current, with a little noise.
 * `shift` moves the pressure sensor (a broken one); `vibration` adds a fourth sensor.
 */
export function pumpValues(r: () => number, i: number, level: number, opts: { shift?: number; vibration?: boolean } = {}): Record<string, number> {
  const flow = level + 3 * Math.sin(i / 40) + (r() - 0.5) * 0.4;
  const v: Record<string, number> = { Current: 0.5 + 0.03 * flow + (r() - 0.5) * 0.02, Flow: flow, Pressure: 2 - 0.02 * flow + (r() - 0.5) * 0.02 + (opts.shift ?? 0) };
  if (opts.vibration === true) v.Vibration = 1.2 + 0.01 * flow + (r() - 0.5) * 0.05;
  return v;
}

/**
 * Two days of readings (8640 at 20 s; `count` for another number) of a pump at `level` from
 * `from`, on gateway gw-1, sequence numbers from `seq0`; the noise is seeded by `seq0` and the
 * pump id, so the same call uploads the same readings.
 */
export async function seedDays(container: ContainerClient, pumpId: string, from: number, seq0: number, level: number, opts: { vibration?: boolean; count?: number } = {}): Promise<void> {
  const r = rng(seq0 + pumpId.length);
  await seedReadings(container, pumpId, 'gw-1', from, opts.count ?? 8640, (i) => pumpValues(r, i, level, { vibration: opts.vibration }), { seq0 });
}

/** The evaluation records of `source`'s `version` in the registry (one per train run that compared it), by name. */
export async function evaluationRecords(container: ContainerClient, source: string, version: string): Promise<Array<{ name: string; record: EvaluationRecord }>> {
  const out: Array<{ name: string; record: EvaluationRecord }> = [];
  for await (const blob of container.listBlobsFlat({ prefix: `models/${source}/${version}/evaluations/` })) {
    out.push({ name: blob.name, record: EvaluationRecordSchema.parse(JSON.parse((await container.getBlockBlobClient(blob.name).downloadToBuffer()).toString('utf8'))) });
  }
  return out;
}
