import { labelFields, type AlertCursor, type Label, type LabelStore } from '../../buffer/labels.js';
import type { StoredRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { ModelManager } from '../../inference/models.js';
import { HttpError } from './errors.js';
import { parseLimit, parseSince } from './query.js';
import type { StatusServer } from './server.js';

const MAX_PER_PUMP = 1000;

/** A label as the API shows it (times as ISO 8601). */
export function labelJson(l: Label): Record<string, unknown> {
  return { ...labelFields(l), synced: l.synced };
}

/** The threshold of the model that scored a row, when that model is still known to the agent. */
function thresholdOf(row: StoredRow, engine: InferenceEngine, models: ModelManager): number | null {
  const live = engine.modelFor(row.pumpId);
  if (live && live.meta.version === row.modelVersion) return live.meta.threshold;
  for (const s of Object.values(models.status())) if (s.version === row.modelVersion && s.threshold !== null) return s.threshold;
  return null;
}

/** `before`: the `next` of a previous answer, `<ts epoch ms>:<seq>`; null when absent. */
function parseBefore(url: URL): AlertCursor | null {
  const text = url.searchParams.get('before');
  if (text === null || text === '') return null;
  const m = /^(-?\d{1,16}):(\d{1,16})$/.exec(text);
  const cursor = m ? { ts: Number(m[1]), seq: Number(m[2]) } : null;
  if (!cursor || !Number.isSafeInteger(cursor.ts) || !Number.isSafeInteger(cursor.seq)) {
    throw new HttpError(400, 'PW_BAD_QUERY', `before must be the "next" of a previous answer, <reading time in epoch ms>:<seq> (got ${JSON.stringify(text.slice(0, 40))})`);
  }
  if (url.searchParams.has('perPump')) throw new HttpError(400, 'PW_BAD_QUERY', 'before and perPump cannot be combined: page one list with limit (and pumpId)');
  return cursor;
}

/** `perPump`: an integer from 1 to MAX_PER_PUMP, or null when absent; it replaces `limit`, never combines with it. */
function parsePerPump(url: URL): number | null {
  const text = url.searchParams.get('perPump');
  if (text === null || text === '') return null;
  if (url.searchParams.has('limit')) throw new HttpError(400, 'PW_BAD_QUERY', 'perPump and limit cannot be combined: perPump already bounds the answer per pump');
  return parseLimit(text, 0, MAX_PER_PUMP, 'perPump');
}

/**
 * `GET /alerts?pumpId=&since=&limit=&before=` (or `perPump=` instead of `limit`): recent anomalies,
 * newest first, each with its label if any; a full page of one list gives `next`, the `before` of
 * the page after it.
 */
export function registerAlertsRoutes(
  server: StatusServer,
  deps: { labels: LabelStore; engine: InferenceEngine; models: ModelManager },
): void {
  server.route('GET', '/alerts', ({ url }) => {
    const pumpId = url.searchParams.get('pumpId') || undefined;
    const sinceTs = parseSince(url.searchParams.get('since'));
    const before = parseBefore(url);
    const perPump = parsePerPump(url);
    const limit = parseLimit(url.searchParams.get('limit'), 50, 1000);
    const rows =
      perPump === null
        ? deps.labels.alerts({ pumpId, sinceTs, limit, ...(before ? { before } : {}) })
        : pumpId !== undefined
          ? deps.labels.alerts({ pumpId, sinceTs, limit: perPump })
          : deps.labels.alertsPerPump({ sinceTs, perPump });
    const labels = deps.labels.labelsFor(rows);
    const alerts = rows.map((r) => {
      const label = labels.get(r.seq);
      return {
        seq: r.seq,
        pumpId: r.pumpId,
        ts: new Date(r.ts).toISOString(),
        score: r.score,
        threshold: thresholdOf(r, deps.engine, deps.models),
        modelVersion: r.modelVersion,
        values: r.values,
        contributions: r.contributions ?? null,
        label: label ? labelJson(label) : null,
      };
    });
    // A full page of one list may have more after it: `next` asks for them (`before`).
    const last = rows.at(-1);
    const next = perPump === null && last !== undefined && rows.length === limit ? `${last.ts}:${last.seq}` : null;
    return { status: 200, json: { count: alerts.length, alerts, next } };
  });
}
