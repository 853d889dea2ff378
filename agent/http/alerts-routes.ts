import { labelFields, type Label, type LabelStore } from '../../buffer/labels.js';
import type { StoredRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { ModelManager } from '../../inference/models.js';
import { parseLimit, parseSince } from './query.js';
import type { StatusServer } from './server.js';

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

/** `GET /alerts?pumpId=&since=&limit=`: recent anomalies, newest first, each with its label if any. */
export function registerAlertsRoutes(server: StatusServer, deps: { labels: LabelStore; engine: InferenceEngine; models: ModelManager }): void {
  server.route('GET', '/alerts', ({ url }) => {
    const pumpId = url.searchParams.get('pumpId') || undefined;
    const sinceTs = parseSince(url.searchParams.get('since'));
    const limit = parseLimit(url.searchParams.get('limit'), 50, 1000);
    const rows = deps.labels.alerts({ pumpId, sinceTs, limit });
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
