import { z } from 'zod';
import { MAX_DATE_MS } from '../../buffer/labels.js';
import type { Reading } from '../../buffer/types.js';
import { FLOAT32_MAX, MAX_FEATURES, nameProblem, quoteName } from '../../inference/contract.js';
import { PUMP_ID_PATTERN, PUMP_ID_RULE } from '../../sync/layout.js';
import { settingNames } from '../config.js';

export interface ValidationLimits {
  /** Readings more than this far ahead of the gateway clock are refused (ms). */
  maxFutureMs: number;
  /** Readings more than this far behind the gateway clock are refused (ms). */
  maxPastMs: number;
  maxValues: number;
}

/** The settings that bound a reading's `ts`, named in its refusal: the sender or the technician then knows which one to change. */
export const FUTURE_SETTING = settingNames('maxFutureSeconds');
export const PAST_SETTING = settingNames('maxPastSeconds');

export const DEFAULT_LIMITS: ValidationLimits = {
  maxFutureMs: 86_400_000,
  maxPastMs: 365 * 86_400_000,
  maxValues: MAX_FEATURES,
};

export { PUMP_ID_PATTERN } from '../../sync/layout.js';
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|([+-])(\d{2}):?(\d{2}))$/;
export { FLOAT32_MAX };

/** Field names as the refusals quote them: `"pump", "time"`. */
const quoted = (keys: readonly PropertyKey[]): string => keys.map((k) => `"${String(k)}"`).join(', ');

const valueSchema = z.union([z.number(), z.null()], {
  error: (iss) => `expected a finite number or null, got ${describe(iss.input)}`,
});

const readingSchema = z.strictObject(
  {
    pumpId: z
      .string({ error: (iss) => (iss.input === undefined ? 'is required' : `expected a string, got ${describe(iss.input)}`) })
      .regex(PUMP_ID_PATTERN, `must be ${PUMP_ID_RULE}`),
    ts: z.union([z.string(), z.number()], {
      error: (iss) => (iss.input === undefined ? 'is required' : `expected an ISO 8601 string or epoch milliseconds, got ${describe(iss.input)}`),
    }),
    // Value names are checked after the schema, on the input's own keys: a record skips a `__proto__` key without an issue.
    values: z.record(z.string(), valueSchema, {
      error: (iss) => (iss.input === undefined ? 'is required' : `expected an object of named values, got ${describe(iss.input)}`),
    }),
  },
  { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown field ${quoted(iss.keys)}` : `expected a reading object, got ${describe(iss.input)}`) },
);

/** A value a check refused, for its message: its type, a number itself, a string's first 40 characters. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return String(v);
  return typeof v;
}

/** An epoch-ms time as ISO 8601 when a Date can hold it (up to the year 275760: beyond, `toISOString` throws), else the number as given. */
export function showTime(ms: number): string {
  return Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : String(ms);
}

/**
 * Why a time (a reading's `ts`, a label's `from` or `to`, named `field`) lies outside the bounds
 * around the gateway clock, naming the setting to change and the likely unit slip; null within them.
 * A time beyond what a Date holds is worded as its number: `new Date(1e20).toISOString()` throws,
 * and a reading with `ts: 1e20` got a 500 for its whole batch over HTTP and, from edgeHub, a
 * message retried for ever that held back every later one.
 */
export function timeBoundsProblem(field: string, ms: number, now: number, limits: Pick<ValidationLimits, 'maxFutureMs' | 'maxPastMs'>): string | null {
  if (ms > now + limits.maxFutureMs) {
    const hint = ms > 1e14 ? ' (epoch milliseconds are expected: is it in microseconds?)' : '';
    return `${field}: ${showTime(ms)} is more than ${limits.maxFutureMs / 1000} s (${FUTURE_SETTING}) ahead of the gateway clock (${showTime(now)})${hint}`;
  }
  if (ms < now - limits.maxPastMs) {
    const hint = ms < 1e11 && ms > 0 ? ' (epoch milliseconds are expected: is it in seconds?)' : '';
    return `${field}: ${showTime(ms)} is more than ${limits.maxPastMs / 1000} s (${PAST_SETTING}) behind the gateway clock (${showTime(now)})${hint}`;
  }
  return null;
}

export type Validated = { ok: true; reading: Reading } | { ok: false; error: string };

function parseTs(ts: string | number): number | string {
  if (typeof ts === 'number') {
    if (!Number.isInteger(ts)) return `ts: epoch milliseconds must be an integer, got ${ts}`;
    return ts;
  }
  return parseIso(ts);
}

/**
 * Epoch ms of an ISO 8601 date-time with its zone, or why it is refused (naming `field`). Date.parse rolls an impossible date
 * over (02-30 → 03-02, T24:00 → the next day), so the parsed instant, read back in the text's own
 * offset, must show the text's date and time.
 */
export function parseIso(ts: string, field = 'ts'): number | string {
  const m = ISO_8601.exec(ts);
  if (m === null) return `${field}: ${describe(ts)} is not an ISO 8601 date-time with a time zone (e.g. 2026-11-23T10:00:00.000Z)`;
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) return `${field}: ${describe(ts)} is not a valid date`;
  const offsetMin = m[7] === undefined ? 0 : (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  const local = new Date(ms + offsetMin * 60_000);
  const parsed = [local.getUTCFullYear(), local.getUTCMonth() + 1, local.getUTCDate(), local.getUTCHours(), local.getUTCMinutes(), local.getUTCSeconds()];
  const text = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number);
  if (parsed.every((v, i) => v === text[i])) return ms;
  const why = text[3] === 24 ? 'hour 24 is not accepted (write 00:00 of the next day)' : `${m[1]}-${m[2]} has no day ${m[3]}`;
  return `${field}: ${describe(ts)} is not a real date-time: ${why}`;
}

const READING_KEYS = new Set(['pumpId', 'ts', 'values']);

/**
 * The hot path for well-formed readings: returns the reading when `input` certainly passes every
 * rule of the zod schema and the checks below it, else null. It never accepts what zod would
 * refuse (test/unit/validate.test.ts checks both agree); anything unusual falls through to zod,
 * which stays the authority and words the error. It spares the per-reading object copy zod makes.
 */
export function fastPath(input: unknown, now: number, limits: ValidationLimits): Reading | null {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return null;
  const r = input as Record<string, unknown>;
  let keys = 0;
  for (const k in r) {
    if (!Object.hasOwn(r, k) || !READING_KEYS.has(k)) return null;
    keys++;
  }
  if (keys !== 3) return null;
  const { pumpId, ts, values } = r;
  if (typeof pumpId !== 'string' || !PUMP_ID_PATTERN.test(pumpId)) return null;
  let ms: number;
  if (typeof ts === 'number') {
    if (!Number.isInteger(ts)) return null;
    ms = ts;
  } else if (typeof ts === 'string') {
    const parsed = parseIso(ts);
    if (typeof parsed === 'string') return null;
    ms = parsed;
  } else return null;
  if (ms > now + limits.maxFutureMs || ms < now - limits.maxPastMs) return null;
  if (typeof values !== 'object' || values === null || Object.getPrototypeOf(values) !== Object.prototype) return null;
  let n = 0;
  for (const name in values) {
    if (!Object.hasOwn(values, name) || nameProblem(name) !== null) return null;
    const v = (values as Record<string, unknown>)[name];
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX)) return null;
    n++;
  }
  if (n === 0 || n > limits.maxValues) return null;
  return { pumpId, ts: ms, values: values as Record<string, number | null> };
}

/** Validates one reading. Every error names the field and the problem. */
export function validateReading(input: unknown, now: number, limits: ValidationLimits = DEFAULT_LIMITS): Validated {
  const fast = fastPath(input, now, limits);
  return fast ? { ok: true, reading: fast } : validateBySchema(input, now, limits);
}

/**
 * The schema's refusal in words. A reading with wrong field names (`{"pump", "time", "data"}`) is
 * refused naming every unknown and every missing field at once, with the reading's shape: it got
 * "pumpId: is required" alone, and the sender found the next wrong name only on the next try.
 * A single problem keeps its own wording (`pumpId: is required`, `unknown field "extra"`).
 */
function schemaError(input: unknown, issues: readonly z.core.$ZodIssue[]): string {
  const fields = typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : null;
  const unknown = issues.flatMap((i) => (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys : []));
  const missing = fields === null ? [] : [...READING_KEYS].filter((k) => !Object.hasOwn(fields, k));
  if (unknown.length + missing.length > 1) {
    const parts = [
      ...(unknown.length > 0 ? [`unknown field${unknown.length > 1 ? 's' : ''} ${quoted(unknown)}`] : []),
      ...(missing.length > 0 ? [`missing ${missing.join(', ')}`] : []),
    ];
    return `${parts.join('; ')} (a reading is {pumpId, ts, values})`;
  }
  const issue = issues[0]!;
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** The authoritative validation (the zod schema and the checks after it), with worded errors. */
export function validateBySchema(input: unknown, now: number, limits: ValidationLimits = DEFAULT_LIMITS): Validated {
  const parsed = readingSchema.safeParse(input);
  if (!parsed.success) return { ok: false, error: schemaError(input, parsed.error.issues) };
  const r = parsed.data;
  const ts = parseTs(r.ts);
  if (typeof ts === 'string') return { ok: false, error: ts };
  const outside = timeBoundsProblem('ts', ts, now, limits);
  if (outside !== null) return { ok: false, error: outside };
  // The input's names, not the parsed copy's: the copy has lost a `__proto__` value, which must be refused, not dropped.
  const names = Object.keys((input as { values: object }).values);
  if (names.length === 0) return { ok: false, error: 'values: no values (at least one is needed)' };
  if (names.length > limits.maxValues) return { ok: false, error: `values: ${names.length} values, at most ${limits.maxValues} allowed` };
  for (const name of names) {
    const problem = nameProblem(name);
    if (problem !== null) return { ok: false, error: `values: the value name ${quoteName(name)} ${problem}` };
  }
  for (const name of names) {
    const v = r.values[name];
    if (typeof v === 'number' && !Number.isFinite(v)) return { ok: false, error: `values.${name}: ${v} is not a finite number` };
    if (typeof v === 'number' && Math.abs(v) > FLOAT32_MAX) {
      return { ok: false, error: `values.${name}: ${v} (pump "${r.pumpId}") is beyond the float32 range the models take (magnitude at most ${FLOAT32_MAX})` };
    }
  }
  return { ok: true, reading: { pumpId: r.pumpId, ts, values: r.values } };
}
