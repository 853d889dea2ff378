import { labelFields, type Label, type LabelStore } from '../../buffer/labels.js';
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

/** `perPump`: an integer from 1 to MAX_PER_PUMP, or null when absent; it replaces `limit`, never combines with it. */
function parsePerPump(url: URL): number | null {
  const text = url.searchParams.get('perPump');
  if (text === null || text === '') return null;
  if (url.searchParams.has('limit')) throw new HttpError(400, 'PW_BAD_QUERY', 'perPump and limit cannot be combined: perPump already bounds the answer per pump');
  return parseLimit(text, 0, MAX_PER_PUMP, 'perPump');
}

/**
 * `GET /alerts?pumpId=&since=&limit=` (or `perPump=` instead of `limit`): recent anomalies, newest
 * first, each with its label if any.
 */
export function registerAlertsRoutes(
  server: StatusServer,
  deps: { labels: LabelStore; engine: InferenceEngine; models: ModelManager },
): void {
  server.route('GET', '/alerts', ({ url }) => {
    const pumpId = url.searchParams.get('pumpId') || undefined;
    const sinceTs = parseSince(url.searchParams.get('since'));
    const perPump = parsePerPump(url);
    const rows =
      perPump === null
        ? deps.labels.alerts({ pumpId, sinceTs, limit: parseLimit(url.searchParams.get('limit'), 50, 1000) })
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
    return { status: 200, json: { count: alerts.length, alerts } };
  });
}
