import pino, { type Logger } from 'pino';
import { redactSecrets } from '../sync/redact.js';

export type { Logger };

/** Keys whose values are secrets wherever they are (compared in lower case). */
const SECRET_KEYS = new Set([
  'connectionstring',
  'blobconnectionstring',
  'iothubconnectionstring',
  'sasurl',
  'blobsasurl',
  'token',
  'statustoken',
  'sastoken',
  'authorization',
  'password',
  'accountkey',
  'sharedaccesskey',
  'sharedaccesssignature',
  'sig',
]);

/** Paths censored by pino itself (its redact is fast but needs the paths): top level, one level down, the config and request headers. */
const CENSORED_PATHS = [
  'connectionString',
  'sasUrl',
  'token',
  'statusToken',
  'authorization',
  '*.connectionString',
  '*.sasUrl',
  '*.token',
  '*.statusToken',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'config.statusToken',
  'config.blobConnectionString',
  'config.blobSasUrl',
];

/** As deep and as wide as pino writes an object (its depthLimit and edgeLimit): what lies beyond is not written. */
const MAX_DEPTH = 5;
const MAX_BREADTH = 100;
/** Values looked at per log line at most; the rest is left to the redaction of the written line. */
const MAX_NODES = 1000;

/** What a log line shows of an error: its type, code, status and message with secrets removed (never its stack, request or response). */
export function loggedError(err: Error): Record<string, unknown> {
  const e = err as Error & { code?: unknown; statusCode?: unknown };
  const out: Record<string, unknown> = { type: err.name, message: redactSecrets(err.message ?? String(err)) };
  if (e.code !== undefined) out.code = typeof e.code === 'string' ? redactSecrets(e.code) : e.code;
  if (typeof e.statusCode === 'number') out.statusCode = e.statusCode;
  return out;
}

/**
 * A log object with every string passed through redactSecrets, the values of secret keys censored
 * at any depth and errors reduced to `loggedError`. Copies only what it changes, and looks at no
 * more than pino writes (MAX_DEPTH, MAX_BREADTH) nor more than MAX_NODES values.
 */
export function redactLogObject<T>(value: T): T {
  const budget = { nodes: MAX_NODES };
  return scrub(value, 0, budget) as T;
}

function scrub(value: unknown, depth: number, budget: { nodes: number }): unknown {
  if (budget.nodes <= 0) return value;
  budget.nodes--;
  if (typeof value === 'string') return redactSecrets(value);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) return loggedError(value);
  if (depth >= MAX_DEPTH || value instanceof Date || ArrayBuffer.isView(value)) return value;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return scrub((toJSON as () => unknown).call(value), depth, budget); // a URL, say
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    for (let i = 0; i < value.length && i < MAX_BREADTH; i++) {
      const item: unknown = value[i];
      const next = scrub(item, depth + 1, budget);
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | null = null;
  let seen = 0;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    if (++seen > MAX_BREADTH) break;
    const item = (value as Record<string, unknown>)[key];
    const next = SECRET_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null ? '[redacted]' : scrub(item, depth + 1, budget);
    if (next !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
  }
  return copy ?? value;
}

/**
 * Structured JSON logs (pino), one child per component. No secret reaches a line: known secret
 * fields are censored by path (pino) and by key name at any depth, every string of the logged
 * object and of the message is passed through redactSecrets, errors are written as type, code and
 * message only, and the written line (child bindings included) is passed through it once more.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'pumpwatch-agent' },
      redact: { paths: CENSORED_PATHS, censor: '[redacted]' },
      formatters: {
        log: (obj) => redactLogObject(obj),
        bindings: (bindings) => redactLogObject(bindings),
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed: unknown[] = args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a));
          // With no message, pino would write the error's own (unredacted) message.
          const [first] = args as unknown[];
          const err = first instanceof Error ? first : (first as { err?: unknown } | null)?.err;
          if (args.length === 1 && err instanceof Error) scrubbed.push(redactSecrets(err.message));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
        // Child bindings, a message's %o arguments and anything past the limits above end here.
        streamWrite: (line) => redactSecrets(line),
      },
      serializers: {
        err: (err: unknown) => (err instanceof Error ? loggedError(err) : err),
      },
    },
    destination ?? pino.destination(1),
  );
}

/**
 * Calls `done` once the log lines written so far are out. The destination writes asynchronously on
 * node's thread pool (a blocked stdout must not stall the event loop), and its `flush` answers at
 * once when it keeps no buffer (sonic-boom with minLength 0), even while a write is in flight: a
 * process ending by a signal right after it lost its last line (the agent's "abandoned" warning,
 * under load). So this also waits until sonic-boom counts no byte unwritten (`_len`, its own field;
 * a destination without it is taken as flushed). Callers bound the wait.
 */
export function flushLogs(logger: Logger, done: () => void): void {
  const stream = (logger as unknown as Record<symbol, { _len?: unknown } | undefined>)[pino.symbols.streamSym];
  const unwritten = (): boolean => typeof stream?._len === 'number' && stream._len > 0;
  logger.flush(() => {
    if (!unwritten()) return done();
    const poll = setInterval(() => {
      if (unwritten()) return;
      clearInterval(poll);
      done();
    }, 5);
  });
}
