import type { ServerResponse } from 'node:http';
import type { PredictionRow } from '../../buffer/types.js';
import { HttpError } from './errors.js';
import type { Reply, RouteContext } from './server.js';

/** A committed reading as the page receives it. */
export interface LiveRow {
  seq: number;
  ts: string;
  score: number | null;
  anomaly: boolean | null;
  modelVersion: string | null;
  values: Record<string, number | null>;
  contributions: Record<string, number> | null;
}

export interface LiveEventsOptions {
  /** Commits are coalesced and sent at most this often. */
  flushMs?: number;
  /** Only the newest rows of a pump are sent per flush (the page keeps a few hundred). */
  maxRowsPerPump?: number;
  pingMs?: number;
  maxClients?: number;
  /** A client this far behind (bytes queued) is dropped; it reconnects and reloads. */
  maxQueuedBytes?: number;
}

/**
 * Server-sent events for the technician's page (`GET /events`): `rows` events with the readings
 * committed since the last flush, per pump. The page reads them with fetch (so the bearer token
 * travels in a header, never in the URL) and falls back to polling when streaming fails.
 */
export class LiveEvents {
  private readonly clients = new Set<ServerResponse>();
  private pending = new Map<string, LiveRow[]>();
  private flushTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private readonly o: Required<LiveEventsOptions>;

  constructor(options: LiveEventsOptions = {}) {
    this.o = { flushMs: 500, maxRowsPerPump: 120, pingMs: 15_000, maxClients: 20, maxQueuedBytes: 1 << 20, ...options };
  }

  start(): void {
    this.pingTimer = setInterval(() => this.broadcast(': ping\n\n'), this.o.pingMs);
    this.pingTimer.unref();
  }

  /** Ends every open stream (before the server closes, so it need not wait for them). */
  stop(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.pingTimer = this.flushTimer = null;
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.pending.clear();
  }

  clientCount(): number {
    return this.clients.size;
  }

  handler = ({ req, res }: RouteContext): Reply => {
    if (this.clients.size >= this.o.maxClients) {
      throw new HttpError(503, 'PW_TOO_MANY_STREAMS', `${this.o.maxClients} live pages are open already; close one or reload later`);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write(`retry: 3000\nevent: hello\ndata: ${JSON.stringify({ at: new Date().toISOString() })}\n\n`);
    this.clients.add(res);
    const drop = (): void => {
      this.clients.delete(res);
    };
    req.on('close', drop);
    res.on('close', drop);
    return { stream: true };
  };

  /** Commit listener: queues the rows and schedules one flush. */
  record(rows: readonly PredictionRow[], seqs: readonly number[]): void {
    if (this.clients.size === 0) return;
    rows.forEach((r, i) => {
      let list = this.pending.get(r.pumpId);
      if (!list) this.pending.set(r.pumpId, (list = []));
      list.push({
        seq: seqs[i]!,
        ts: new Date(r.ts).toISOString(),
        score: r.score,
        anomaly: r.anomaly,
        modelVersion: r.modelVersion,
        values: r.values,
        contributions: r.contributions ?? null,
      });
      if (list.length > this.o.maxRowsPerPump * 2) list.splice(0, list.length - this.o.maxRowsPerPump);
    });
    if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), this.o.flushMs);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    this.flushTimer = null;
    const pumps: Record<string, LiveRow[]> = {};
    for (const [id, list] of this.pending) pumps[id] = list.slice(-this.o.maxRowsPerPump);
    this.pending = new Map();
    if (Object.keys(pumps).length > 0) this.broadcast(`event: rows\ndata: ${JSON.stringify({ pumps })}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) {
      if (res.writableLength > this.o.maxQueuedBytes) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
