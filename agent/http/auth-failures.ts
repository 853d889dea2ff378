/**
 * Requests refused by the access checks (auth.ts: a wrong or missing token, a client off the
 * gateway or a page of another origin with no token configured), counted and logged. Someone
 * trying tokens at a thousand a second left no line in the log (OT security review): each reason
 * now has its warning, the first refusal and then at most one line a minute with the count
 * (RepeatLog, as the refusal logs of input messages), with the client's address, the route and
 * why; never what the client sent as a token. The counts are on /metrics and /status.
 */
import type { Logger } from '../logger.js';
import { RepeatLogs } from '../repeat-log.js';
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from './auth.js';

export interface AuthFailureView {
  total: number;
  byReason: Record<AuthFailureReason, number>;
  /** The last refusal: when (ISO), why, from where and on which route; null before the first. */
  last: { at: string; reason: AuthFailureReason; remoteAddress: string; route: string } | null;
}

export class AuthFailures {
  private readonly counts = new Map<AuthFailureReason, number>(AUTH_FAILURE_REASONS.map((r) => [r, 0]));
  /** No recovery line: a refusal has no end to tell (a later good request may come from someone else). */
  private readonly logs: RepeatLogs<AuthFailureReason>;
  private last: AuthFailureView['last'] = null;

  constructor(
    private readonly options: { logger: Logger; clock?: () => number; monotonic?: () => number },
  ) {
    this.logs = new RepeatLogs((reason) => ({
      failure: (fields, msg) => options.logger.warn(fields, msg),
      message: `request refused by the access check (${reason})`,
      monotonic: options.monotonic,
    }));
  }

  /** One refused request: `route` is the route's pattern (`GET /pumps/:pumpId/predictions`), not the path asked for. */
  record(reason: AuthFailureReason, remoteAddress: string, route: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.last = { at: new Date((this.options.clock ?? Date.now)()).toISOString(), reason, remoteAddress, route };
    this.logs.of(reason).failed({ reason, remoteAddress, route });
  }

  /** Per reason, every reason listed (0 before its first): pumpwatch_http_auth_failures_total{reason}. */
  samples(): Array<{ labels: { reason: string }; value: number }> {
    return AUTH_FAILURE_REASONS.map((reason) => ({ labels: { reason }, value: this.counts.get(reason) ?? 0 }));
  }

  view(): AuthFailureView {
    const byReason = Object.fromEntries(AUTH_FAILURE_REASONS.map((r) => [r, this.counts.get(r) ?? 0])) as Record<AuthFailureReason, number>;
    return { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason, last: this.last };
  }
}
