import { parseIso } from '../ingest/validate.js';
import { HttpError } from './errors.js';

/**
 * The query parameters each GET route takes (by its path as registered): the server answers
 * `400 PW_BAD_QUERY` for any other, as a misspelt one (`limt`, `pumpid`) would otherwise be
 * ignored and the answer look like the one asked for (every pump's labels for `pumpid=…`). A
 * route missing here takes none; the page's public files are not checked.
 */
export const QUERY_PARAMETERS: Readonly<Record<string, readonly string[]>> = {
  '/pumps/:pumpId/predictions': ['since', 'afterSeq', 'limit'],
  '/alerts': ['pumpId', 'since', 'limit', 'before', 'perPump', 'afterSeq'],
  '/alerts/:seq/episode': ['pumpId'],
  '/labels': ['pumpId', 'since', 'limit', 'withdrawn'],
};

/**
 * Refuses a query parameter the route at `path` does not take, naming it and those it takes, and
 * one given twice (`pumpId=a&pumpId=b` answered one pump's rows, as if asked for both).
 */
export function checkQueryParameters(path: string, query: URLSearchParams): void {
  const known = QUERY_PARAMETERS[path] ?? [];
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (seen.has(name)) throw new HttpError(400, 'PW_BAD_QUERY', `query parameter "${name.slice(0, 40)}" is given more than once for GET ${path}: give it once`);
    seen.add(name);
    if (known.includes(name)) continue;
    const takes = known.length === 0 ? 'it takes none' : `it takes ${known.join(', ')}`;
    throw new HttpError(400, 'PW_BAD_QUERY', `unknown query parameter "${name.slice(0, 40)}" for GET ${path}: ${takes}`);
  }
}

/**
 * A `since`-like query parameter, undefined when absent: an ISO 8601 date-time with its zone, or
 * an integer of epoch milliseconds (all digits: `2026` is 2 026 ms after 1970, not the year), as a
 * reading's `ts`. Date.parse alone took "garbage 1" and "next tuesday 12" for dates of 2001.
 */
export function parseSince(text: string | null, name = 'since'): number | undefined {
  if (text === null || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : parseIso(text, name);
  if (typeof n === 'number' && Number.isSafeInteger(n)) return n;
  const why = typeof n === 'string' ? n.slice(n.indexOf(': ') + 2) : 'too large';
  throw new HttpError(
    400,
    'PW_BAD_QUERY',
    `${name}: "${text.slice(0, 40)}" is neither an ISO 8601 date nor epoch milliseconds (${why}); write a date-time with its zone, or an integer of epoch ms`,
  );
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
