import { HttpError } from './errors.js';

/** A `since`-like query parameter: ISO 8601 or epoch milliseconds; undefined when absent. */
export function parseSince(text: string | null, name = 'since'): number | undefined {
  if (text === null || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) throw new HttpError(400, 'PW_BAD_QUERY', `${name}: "${text}" is neither an ISO 8601 date nor epoch milliseconds`);
  return n;
}

/** A sequence number query parameter (`afterSeq`): a non-negative integer, undefined when absent. */
export function parseSeq(text: string | null, name: string): number | undefined {
  if (text === null || text === '') return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new HttpError(400, 'PW_BAD_QUERY', `${name}: "${text}" must be a sequence number (a non-negative integer)`);
  return n;
}

/** A `limit` query parameter (or another count, `name`): an integer from 1 to `max`, `def` when absent. */
export function parseLimit(text: string | null, def: number, max: number, name = 'limit'): number {
  if (text === null || text === '') return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, 'PW_BAD_QUERY', `${name}: "${text}" must be an integer from 1 to ${max}`);
  return n;
}
