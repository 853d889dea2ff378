/**
 * Input messages from other modules (edgeHub routes to input `readings`): one reading or an array,
 * JSON. They take the same path as HTTP readings (validate → micro-batch → score → commit) and
 * are acknowledged only after that commit. Bad content is kept in the `rejected` table with its
 * reason and then acknowledged; nothing that arrived is lost. While the buffer cannot commit, the
 * message is retried with backoff and not acknowledged (edgeHub keeps it). Messages are stored one
 * after the other in arrival order, so their readings commit, and their PUBACKs go out (MQTT asks
 * for them in order), in the order edgeHub sent them; twin traffic meanwhile goes on (transport.ts).
 */
import type device from 'azure-iot-device';
import { backoffDelay, sleep, type BackoffPolicy } from '../../inference/backoff.js';
import { safeErrorMessage } from '../../sync/redact.js';
import type { IngestPipeline, RefusedReading } from '../ingest/pipeline.js';
import { deepNesting, tooDeepReason } from '../ingest/untrusted-json.js';
import type { Logger } from '../logger.js';
import type { Counter } from '../metrics.js';
import { RepeatLogs } from '../repeat-log.js';
import { monotonicNow } from '../../sync/clock.js';
import type { ModuleClient } from './connection.js';
import type { AckGate } from './transport.js';
import type { Reading } from '../../buffer/types.js';

export const READINGS_INPUT = 'readings';
const SOURCE = 'edge';
/** How long a message may fail to commit before /healthz says so (InputHandler.health). */
export const STUCK_AFTER_MS = 60_000;

type Message = InstanceType<typeof device.Message>;

export interface InputDeps {
  pipeline: IngestPipeline;
  gate: AckGate;
  logger: Logger;
  /** pumpwatch_edge_input_messages_total{result}. */
  messages: Counter;
  backoff?: BackoffPolicy;
  clock?: () => number;
  /** Monotonic ms for the once-a-minute refusal lines (default performance.now). */
  monotonic?: () => number;
}

/** The items of a message body, or the reason it cannot hold readings. */
export function parseBody(text: string): { items: unknown[] } | { error: string } {
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // a byte order mark, as POST /readings accepts it
  // Checked before JSON.parse, as POST /readings does: such a message was parsed, then its refusal
  // overflowed the stack and the message was retried for ever, never acknowledged.
  const deep = deepNesting(json);
  if (deep !== null) return { error: `body has ${tooDeepReason(`line ${deep.line}, column ${deep.column}`)}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    return { error: `body is not valid JSON: ${(err as Error).message}` };
  }
  if (Array.isArray(parsed)) return { items: parsed };
  if (parsed !== null && typeof parsed === 'object') return { items: [parsed] };
  return { error: 'body is neither a reading object nor an array of readings' };
}

type Outcome = 'accepted' | 'partly-rejected' | 'rejected';
/**
 * A message parsed and validated: refused whole, or its good readings, how many were refused, and
 * the refused ones whose pump can be read (the refusal listeners are told of them after the good
 * readings were submitted).
 */
type Screened = { outcome: 'rejected' } | { readings: Reading[]; rejected: number; refused: RefusedReading[] };

/**
 * What a refusal is about, for its log line (refusalLog): the reading's field its reason starts
 * with, else the reading as a whole. A handful of keys whatever the senders send; never a value.
 */
function readingRefusalKind(reason: string | undefined): string {
  return /^(pumpId|ts|values)\b/.exec(reason ?? '')?.[1] ?? 'reading';
}

/** The message with its error's code first (`PW_BUFFER_DISK_FULL: …`), as the buffer's health says it. */
function withCode(err: unknown, message: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

export class InputHandler {
  private readonly stopping = new AbortController();
  /** The last message queued: each one is handled after the one before it. */
  private tail: Promise<void> = Promise.resolve();
  /**
   * Refusals repeat as long as their cause (a sensor module sending a wrong clock's times, ten
   * messages a second): one line per kind, then at most one a minute with the count, or they would
   * fill the module's log (10 MB × 3 in the manifest) and rotate the lines that explain an outage
   * away. Every refusal is still counted (pumpwatch_edge_input_messages_total, the rejected
   * counter) and stored in `rejected` with its reason.
   */
  private readonly refusalLogs = new RepeatLogs<string>((kind) => ({
    failure: (fields, msg) => this.deps.logger.warn(fields, msg),
    message: kind.startsWith('message:') ? 'input message rejected' : 'readings in an input message rejected', // the kinds below: message:… and readings:…
    monotonic: this.deps.monotonic,
  }));
  /** The message being retried (one at a time: they are stored in order), else null. */
  private retrying: { input: string; since: number; sinceMono: number; attempts: number; error: string } | null = null;

  constructor(private readonly deps: InputDeps) {}

  /**
   * Degraded while a message has not committed for STUCK_AFTER_MS: edgeHub keeps it and every
   * message after it, and nothing else said so while the buffer took other readings (a commit
   * from POST /readings clears the buffer's failure, and /healthz said ok; OT security review).
   * Quiet while `bufferFailing()`: the buffer check already fails with the cause.
   */
  health(bufferFailing: () => boolean): { ok: true; degraded?: string } {
    const r = this.retrying;
    if (r === null || this.monotonic() - r.sinceMono < STUCK_AFTER_MS || bufferFailing()) return { ok: true };
    return {
      ok: true,
      degraded: `input "${r.input}": a message not committed since ${new Date(r.since).toISOString()} (${r.attempts} attempts; not acknowledged, so edgeHub holds it and the messages after it): ${r.error}`,
    };
  }

  private monotonic(): number {
    return (this.deps.monotonic ?? monotonicNow)();
  }

  attach(client: ModuleClient): void {
    client.on('inputMessage', (inputName: string, msg: Message) => {
      // The connection it came on, as noted when the packet arrived (the SDK emits this a tick later,
      // when it may already have made a new client): a release must never name a newer one.
      const connection = this.deps.gate.connectionOf(msg.data) ?? this.deps.gate.connection;
      this.tail = this.tail.then(() =>
        this.handle(client, inputName, msg, connection).catch((err: unknown) => {
          this.deps.logger.error({ err: { message: safeErrorMessage(err) } }, 'input message left unacknowledged');
        }),
      );
    });
  }

  /** Stops retrying; messages not committed stay unacknowledged (edgeHub redelivers them). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.tail;
  }

  private async handle(client: ModuleClient, inputName: string, msg: Message, connection: number): Promise<void> {
    if (this.stopping.signal.aborted) return; // queued behind a message that was still failing: edgeHub keeps it
    const stale = () => this.deps.gate.stale(msg.data, msg.messageId);
    if (stale()) return this.skipStale(); // queued behind a failing one while the connection changed
    const text = msg.getBytes().toString('utf8');
    let result: Awaited<ReturnType<InputHandler['store']>>;
    try {
      result = await this.store(inputName, text, stale);
    } finally {
      this.retrying = null; // committed, refused, stale or stopped: no longer retried
    }
    if (result === 'stale') return this.skipStale();
    if (result === null) return; // stopping: not acknowledged
    this.deps.gate.release(msg.messageId, connection);
    await client.complete(msg).catch(() => undefined);
    this.deps.messages.inc(1, { result });
  }

  /**
   * A copy of a connection that is gone, not yet committed, whose redelivered copy is already held
   * on the current connection (AckGate.stale): that one is stored, once, where this copy would
   * have made two, and the queue does not grow with every reconnection.
   */
  private skipStale(): void {
    this.deps.messages.inc(1, { result: 'redelivered' });
  }

  /**
   * Commits the readings (or stores the refusal); retries while the buffer fails. Refusals are
   * stored once: a retry commits the good readings again, not the refused ones. Null when stopped
   * first; 'stale' when the connection changed and the message's new copy is in hand.
   */
  private async store(inputName: string, text: string, stale: () => boolean = () => false): Promise<Outcome | 'stale' | null> {
    let screened: Screened | null = null;
    // The refusals stored, told once the good readings were submitted (committed, or told unstored
    // when the buffer failed), as POST /readings tells them after the commit: told first, a pump
    // alerted silent would resume at its last reading before the silence, without the readings it missed.
    let untold: readonly RefusedReading[] = [];
    const tell = (): void => {
      this.deps.pipeline.tellRefused(untold);
      untold = [];
    };
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1 && stale()) return 'stale'; // the connection changed while this one waited
      try {
        if (screened === null) {
          screened = this.screen(inputName, text);
          if (!('outcome' in screened)) untold = screened.refused;
        }
        if ('outcome' in screened) return screened.outcome;
        const { readings, rejected } = screened;
        if (readings.length > 0) await this.deps.pipeline.submit(readings);
        tell();
        if (rejected === 0) return 'accepted';
        return readings.length > 0 ? 'partly-rejected' : 'rejected';
      } catch (err) {
        tell();
        if (this.stopping.signal.aborted) return null;
        const delay = backoffDelay(this.deps.backoff ?? { baseMs: 500, capMs: 30_000 }, attempt);
        const error = withCode(err, safeErrorMessage(err));
        this.retrying = {
          input: inputName,
          since: this.retrying?.since ?? (this.deps.clock ?? Date.now)(),
          sinceMono: this.retrying?.sinceMono ?? this.monotonic(),
          attempts: attempt,
          error,
        };
        this.deps.logger.error({ err: { message: error }, retryInMs: delay }, 'input message could not be committed; retrying (not acknowledged)');
        try {
          await sleep(delay, this.stopping.signal);
        } catch {
          return null;
        }
      }
    }
  }

  /** Parses and validates a message once, storing what is refused; throws (nothing stored) when the buffer fails. */
  private screen(inputName: string, text: string): Screened {
    const { pipeline } = this.deps;
    const now = (this.deps.clock ?? Date.now)();
    const refuse = (kind: string, reason: string): Screened => {
      pipeline.reject([{ source: SOURCE, raw: text, reason, receivedAt: now }]);
      this.refusalLogs.of(`message:${kind}`).failed({ input: inputName, reason });
      return { outcome: 'rejected' };
    };
    if (inputName !== READINGS_INPUT) return refuse('input', `unknown input "${inputName}" (this module reads "${READINGS_INPUT}")`);
    const body = parseBody(text);
    if ('error' in body) return refuse('body', body.error);
    const res = pipeline.screen(body.items, SOURCE);
    if (res.rejected.length > 0) {
      const first = res.rejected[0]?.error;
      this.refusalLogs.of(`readings:${readingRefusalKind(first)}`).failed({ input: inputName, rejected: res.rejected.length, first });
    }
    return { readings: res.readings, rejected: res.rejected.length, refused: res.refused };
  }
}
