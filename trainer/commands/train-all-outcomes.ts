/**
 * train-all's outcome of each source as data: the record it writes (registry/run-record.ts),
 * which is also its `--json` line, the options that decide whether `--resume` may take an earlier
 * attempt's record for this one's, the line of a source resumed, and the counts of the last line.
 */
import { createHash } from 'node:crypto';
import { redactSecrets, safeErrorMessage } from '../../sync/redact.js';
import { RUN_RECORD_SCHEMA, type RunRecord, type SkipKind } from '../registry/run-record.js';
import type { TrainOutcome, TrainRequest } from '../train/pipeline.js';

/** What every record of one run shares. */
export interface RunScope {
  from: number;
  to: number;
  shard: string;
  options: Record<string, unknown>;
  optionsHash: string;
  build: string;
}

/**
 * The train options that change a source's outcome, defaults filled in, in a stable order: two
 * runs whose options give the same values train alike, however they were spelt. Not the range
 * (the record's blob name holds it), nor what only says where output goes (--report-dir,
 * --concurrency, --shard). `deploy`: a run without --deploy leaves a promotion undeployed and
 * unmarked, which a --deploy run resuming it would never push.
 */
export function runOptions(req: TrainRequest, deploy: boolean): Record<string, unknown> {
  return canonical({
    algo: req.algorithm ?? 'default',
    window: req.window ?? 'default',
    holdout: req.holdoutFraction,
    margin: req.margin,
    maxFar: req.maxFar,
    maxAlarmsPerDay: req.maxAlarmsPerDay ?? 'default',
    seed: req.seed,
    version: req.version ?? 'default',
    exclude: [...(req.exclude ?? [])].sort(),
    ifDrifted: req.ifDrifted ?? false,
    allowOlder: req.allowOlder === true,
    stoppedWhen: req.stoppedWhen === undefined ? 'inherit' : req.stoppedWhen === null ? 'none' : req.stoppedWhen,
    deploy,
  }) as Record<string, unknown>;
}

export const optionsHash = (options: Record<string, unknown>): string => createHash('sha256').update(JSON.stringify(options)).digest('hex').slice(0, 16);

/** `value` with every object's keys sorted, so that its JSON is the same for the same values. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
  );
}

/** How a source ended in this attempt. */
export type SourceEnd =
  | { status: TrainOutcome['status']; outcome: TrainOutcome; deployPending: boolean }
  | { status: 'failed'; error: unknown; outcome: TrainOutcome | null; deployPending: boolean };

/** The record of `source`'s outcome in this attempt; `labelIds`: those of the labels it was judged with (train-all-stale.ts labelIdsOf). */
export function runRecordOf(scope: RunScope, source: string, startedAt: Date, finishedAt: Date, end: SourceEnd, labelIds: readonly string[]): RunRecord {
  const o = end.outcome;
  const r = o?.record ?? null;
  const live = end.status === 'promoted' ? r?.version : (r?.evaluation.championVersion ?? undefined);
  const failure = 'error' in end ? { code: (end.error as { code?: unknown } | null)?.code, reason: safeErrorMessage(end.error) } : null;
  return {
    schema: RUN_RECORD_SCHEMA,
    source,
    range: rangeOf(scope),
    outcome: end.status,
    ...(end.status === 'skipped' && o?.skipKind ? { skipKind: o.skipKind } : {}),
    ...(typeof failure?.code === 'string' ? { code: failure.code } : {}),
    reason: oneLine(failure ? failure.reason : redactSecrets(o?.reason ?? '')),
    ...(r ? { version: r.version } : {}),
    ...(live ? { live } : {}),
    ...(o?.evaluationBlob ? { evaluation: o.evaluationBlob } : {}),
    ...(end.deployPending ? { deployPending: true } : {}),
    labelIds: [...labelIds],
    options: scope.options,
    optionsHash: scope.optionsHash,
    build: scope.build,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    shard: scope.shard,
  };
}

const oneLine = (text: string): string => text.split('\n')[0] ?? '';

/** The run's range as the records and the summary give it (ISO). */
const rangeOf = (scope: RunScope) => ({ from: new Date(scope.from).toISOString(), to: new Date(scope.to).toISOString() });

/**
 * An earlier attempt's record that --resume takes for this one's: the same range (the blob's
 * name), options and build, and done. A failed source is tried again; so is one done by another
 * build, whose training may differ.
 */
export const doneAlready = (record: RunRecord, scope: RunScope): boolean => record.outcome !== 'failed' && record.optionsHash === scope.optionsHash && record.build === scope.build;

/** `pump-7: done already at … (kept live V), not trained again (--resume)`. */
export function resumedLine(record: RunRecord): string {
  return `${record.source}: done already at ${record.finishedAt} (${outcomeWords(record)}), not trained again (--resume)`;
}

/**
 * `pump-7: trained again: 2 labels of the range posted since the earlier attempt read them (its
 * record: done at … (kept live V)) (--resume)`: a source whose record --resume would take but
 * that no longer stands (train-all-stale.ts says `why`).
 */
export function trainedAgainLine(record: RunRecord, why: string): string {
  return `${record.source}: trained again: ${why} (its record: done at ${record.finishedAt} (${outcomeWords(record)})) (--resume)`;
}

/** A record's outcome as the --resume lines say it: `promoted V`, `kept live V`, `skipped: no drift`. */
function outcomeWords(record: RunRecord): string {
  return record.outcome === 'promoted'
    ? `promoted ${record.version ?? ''}`
    : record.outcome === 'kept'
      ? `kept ${record.live ? `live ${record.live}` : 'no live model'}`
      : `skipped${record.skipKind ? `: ${skipWords(record.skipKind)}` : ''}`;
}

const skipWords = (kind: string): string => kind.replaceAll('-', ' ');

/** What the last line (and --json's summary) counts of one source. */
export interface Counted {
  /** `not tried`: left out after an outage; `done already`: resumed from an earlier attempt's record. */
  status: TrainOutcome['status'] | 'failed' | 'not tried' | 'done already';
  skipKind?: SkipKind | string;
  deployPending: boolean;
}

/** --json's last line: the counts by outcome, and the skipped ones by kind. */
export function summaryOf(results: readonly Counted[], scope: RunScope, deploy: boolean): Record<string, unknown> {
  const count = (s: Counted['status']) => results.filter((r) => r.status === s).length;
  const skipKinds: Record<string, number> = {};
  for (const r of results) if (r.status === 'skipped') skipKinds[r.skipKind ?? 'other'] = (skipKinds[r.skipKind ?? 'other'] ?? 0) + 1;
  return {
    summary: {
      shard: scope.shard,
      range: rangeOf(scope),
      sources: results.length,
      promoted: count('promoted'),
      kept: count('kept'),
      skipped: count('skipped'),
      failed: count('failed'),
      notTried: count('not tried'),
      doneAlready: count('done already'),
      skipKinds,
      ...(deploy ? { deployPending: results.filter((r) => r.deployPending).length } : {}),
    },
  };
}
