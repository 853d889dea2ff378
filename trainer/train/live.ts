/**
 * What a `train` run knows of the live model before it reads the range: the live model itself (the
 * champion: best.json, its model.json and its bytes), or a first promotion that did not finish,
 * and the run's stopped-when rule (inherited from the live model unless given).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { readBestOrUnfinished, type UnfinishedPromotion } from '../registry/best-record.js';
import { readModelBytes } from '../registry/model-blob.js';
import type { BestState } from '../registry/read.js';
import type { ModelRecord } from '../registry/records.js';
import type { Decision } from './decide.js';
import type { TrainRequest } from './request.js';
import { stoppedRuleOf, type RunStop } from './run-stop.js';

export interface Champion {
  state: BestState;
  record: ModelRecord;
  bytes: Uint8Array;
}

export interface Live {
  champion: Champion | null;
  /** A first promotion that did not finish (no best.json): only a challenger of that very version may go on (finishUnfinished). */
  unfinished: UnfinishedPromotion | null;
  /** The run's stopped-when rule (stoppedRuleOf). */
  stop: RunStop | null;
}

/** The live model (or the unfinished first promotion) of `req.source`, and the run's stopped-when rule. */
export async function loadLive(container: ContainerClient, req: TrainRequest, now: Date): Promise<Live> {
  const { champion, unfinished } = await loadChampion(container, req.source, now);
  return { champion, unfinished, stop: stoppedRuleOf(req, champion) };
}

/** The error a run fails with: with an unfinished first promotion, its refusal, whatever went wrong (only that version may go on). */
export function refused(live: Live, err: unknown): unknown {
  return live.unfinished?.refusal ?? err;
}

/** The newest reading of the live model's data; a record without one (hand-made) is not compared by it (NaN). */
export function liveNewestOf(champion: Champion | null): number {
  return champion ? Date.parse(champion.record.data.holdoutTo) : NaN;
}

/** The live model, or (no best.json) the first promotion that did not finish, which only its own version may finish. */
async function loadChampion(container: ContainerClient, source: string, now: Date): Promise<{ champion: Champion | null; unfinished: UnfinishedPromotion | null }> {
  const { best, unfinished } = await readBestOrUnfinished(container, source, now);
  if (!best) return { champion: null, unfinished };
  return { champion: { state: best.state, record: best.record, bytes: await readModelBytes(container, best.record) }, unfinished: null };
}

/**
 * The challenger is the version of a first promotion that did not finish (its model.json says
 * promoted, best.json was never written: a run stopped between the two). It is promoted, as that
 * run decided with no live model either; registerVersion keeps its model.json, and the
 * promotion writes best.json (If-None-Match: *) as that run would have.
 */
export function finishUnfinished(decision: Decision, unfinished: UnfinishedPromotion | null): Decision {
  if (unfinished === null || !decision.promoted) return decision;
  const r = unfinished.record;
  return { ...decision, reason: `${decision.reason}; this finishes the promotion of ${r.version} a run began at ${r.createdAt} (its model.json says promoted) and that did not write best.json` };
}
