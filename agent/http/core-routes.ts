import type { BufferStore } from '../../buffer/store.js';
import type { ModelManager } from '../../inference/models.js';
import type { MetricsRegistry } from '../metrics.js';
import type { AgentStatus } from '../status.js';
import { parseLimit, parseSeq, parseSince } from './query.js';
import type { StatusServer } from './server.js';

/** Health, readiness, status, metrics and per-pump predictions. */
export function registerCoreRoutes(
  server: StatusServer,
  deps: { status: AgentStatus; models: ModelManager; buffer: BufferStore; registry: MetricsRegistry },
): void {
  server.route(
    'GET',
    '/healthz',
    () => {
      const h = deps.status.health();
      // Degraded is running: 200, so IoT Edge and Docker leave the module alone; `degraded` names the parts.
      const status = !h.ok ? 'failing' : h.degraded.length > 0 ? 'degraded' : 'ok';
      return { status: h.ok ? 200 : 503, json: { status, failing: h.failing, degraded: h.degraded, checks: h.checks } };
    },
    { public: true },
  );
  server.route(
    'GET',
    '/readyz',
    () =>
      deps.models.ready()
        ? { status: 200, json: { status: 'ready' } }
        : { status: 503, json: { status: 'not ready', code: 'PW_NO_MODEL', error: 'no model is active yet' } },
    { public: true },
  );
  server.route('GET', '/status', () => ({ status: 200, json: deps.status.snapshot() }));
  server.route('GET', '/metrics', () => ({ status: 200, body: deps.registry.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' }));
  server.route('GET', '/pumps/:pumpId/predictions', ({ url, params }) => {
    const sinceTs = parseSince(url.searchParams.get('since'));
    const afterSeq = parseSeq(url.searchParams.get('afterSeq'), 'afterSeq');
    const limit = parseLimit(url.searchParams.get('limit'), 500, 10_000);
    // With afterSeq, the rows right after it (a poll); without, the newest: nothing follows them.
    const { rows, more } =
      afterSeq === undefined
        ? { rows: deps.buffer.predictions(params.pumpId!, { sinceTs, limit }), more: false }
        : deps.buffer.predictionsAfter(params.pumpId!, { afterSeq, sinceTs, limit });
    return {
      status: 200,
      json: {
        pumpId: params.pumpId,
        count: rows.length,
        // The afterSeq of the next poll, and whether rows already wait after it: a poller that
        // fell behind by more than `limit` asks again at once instead of losing the gap.
        next: rows.at(-1)?.seq ?? afterSeq ?? 0,
        more,
        predictions: rows.map((r) => ({
          seq: r.seq,
          ts: new Date(r.ts).toISOString(),
          values: r.values,
          score: r.score,
          anomaly: r.anomaly,
          modelVersion: r.modelVersion,
          imputed: r.imputed,
          unscoredReason: r.unscoredReason,
          contributions: r.contributions ?? null,
          shadowScore: r.shadowScore ?? null,
        })),
      },
    };
  });
}
