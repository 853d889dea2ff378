import type { Alert, AlertPublisher } from '../../agent/edge/alerts.js';
import type { BufferStore } from '../../buffer/store.js';

/**
 * A kill between a send and the save of the pending list: a publisher restored from the buffer
 * sends one alert to edgeHub and fails the next (the process stopping); the list is then put back
 * as it was saved before (`savedBefore`, the kill kept the drain from saving it), and a publisher of
 * the next run restores it and sends the rest. Returns what each run sent.
 */
export async function sendOneThenRestart(
  publisher: (send: (a: Alert) => Promise<void>) => AlertPublisher,
  buffer: BufferStore,
  savedBefore: string,
): Promise<{ once: Alert[]; rest: Alert[]; after: AlertPublisher }> {
  const once: Alert[] = [];
  const stopping = publisher(async (a) => {
    if (once.length === 1) throw new Error('stopping');
    once.push(a);
  });
  stopping.restore();
  stopping.flush();
  await stopping.idle();
  buffer.setMeta('alerts.pending', savedBefore);
  const rest: Alert[] = [];
  const after = publisher(async (a) => void rest.push(a));
  after.restore();
  after.flush();
  await after.idle();
  return { once, rest, after };
}

/** The fields of a delivered alert the alarm's consistency is judged on. */
interface AlarmAlert {
  id?: string;
  kind?: string;
  pumpId: string;
  seq: number;
  episode?: number;
}

/**
 * What is wrong in a delivered stream of alerts (in delivery order) as a control room sees the
 * anomaly alarms, after deduplicating on `id` (a resend after a kill): every `anomaly` alert's
 * episode names a raise of its pump delivered before it (a raise: seq = episode) and not cleared
 * since; no episode is raised twice; every `anomaly-cleared` names a raise delivered before it and
 * comes once per episode. `noneLost`: no alert was dropped (no full pending list), so a pump's raise
 * also comes only once its previous episode was cleared (an alarm forgotten raises again instead).
 * Empty when the stream is consistent.
 */
export function alarmStreamProblems(delivered: readonly AlarmAlert[], opts: { noneLost?: boolean } = {}): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const raised = new Map<string, Set<number>>();
  const cleared = new Map<string, Set<number>>();
  const lastRaise = new Map<string, number>();
  const of = (m: Map<string, Set<number>>, pumpId: string): Set<number> => m.get(pumpId) ?? m.set(pumpId, new Set()).get(pumpId)!;
  for (const a of delivered) {
    if (a.id !== undefined) {
      if (seen.has(a.id)) continue;
      seen.add(a.id);
    }
    const kind = a.kind ?? 'anomaly';
    if (kind !== 'anomaly' && kind !== 'anomaly-cleared') continue;
    const name = `${kind} ${a.pumpId} seq ${a.seq} episode ${String(a.episode)}`;
    if (a.episode === undefined) problems.push(`${name}: no episode`);
    else if (kind === 'anomaly' && a.episode === a.seq) {
      if (of(raised, a.pumpId).has(a.episode)) problems.push(`${name}: raised twice`);
      const previous = lastRaise.get(a.pumpId);
      if (opts.noneLost && previous !== undefined && !of(cleared, a.pumpId).has(previous)) problems.push(`${name}: raised while episode ${previous} was not cleared`);
      of(raised, a.pumpId).add(a.episode);
      lastRaise.set(a.pumpId, a.episode);
    } else if (!of(raised, a.pumpId).has(a.episode)) problems.push(`${name}: its raise was never delivered before it`);
    else if (of(cleared, a.pumpId).has(a.episode)) problems.push(`${name}: after its episode's clear`);
    else if (kind === 'anomaly-cleared') of(cleared, a.pumpId).add(a.episode);
  }
  return problems;
}
