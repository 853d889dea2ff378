import type { IncomingMessage } from 'node:http';
import { BufferError } from '../../buffer/errors.js';
import { settingNames } from '../config.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import { deepNesting, jsonPreview, RAW_PREVIEW_CHARS, tooDeepReason } from '../ingest/untrusted-json.js';
import { readBody } from './body.js';
import { ByteBudget } from './byte-budget.js';
import { HttpError, toHttpError } from './errors.js';
import type { Reply, StatusServer } from './server.js';

/** At most this many rejection reasons are listed in one answer (`rejectedTotal` has the count). */
const MAX_LISTED = 1000;

interface ParsedBody {
  /** Items that parsed as JSON, with their position in the request. */
  items: Array<{ index: number; value: unknown; raw: string }>;
  /** Lines that are not JSON (NDJSON only). */
  lineErrors: Array<{ index: number; error: string; raw: string }>;
}

/**
 * `index` counts the readings (non-blank lines); a line number counts every line, blank ones too.
 * A line nested too deep is refused before it is parsed (untrusted-json.ts).
 */
function parseNdjson(lines: readonly string[]): ParsedBody {
  const out: ParsedBody = { items: [], lineErrors: [] };
  let index = 0;
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const deep = deepNesting(line);
    if (deep !== null) {
      out.lineErrors.push({ index, error: `line ${i + 1} has ${tooDeepReason(`column ${deep.column}`)}`, raw: line });
    } else {
      try {
        out.items.push({ index, value: JSON.parse(line), raw: line });
      } catch (err) {
        out.lineErrors.push({ index, error: `line ${i + 1} is not valid JSON: ${(err as Error).message}`, raw: line });
      }
    }
    index++;
  }
  return out;
}

/**
 * A body that is not one JSON text is NDJSON when it has several non-blank lines and each starts
 * with `{`: NDJSON with a bad or cut-off line still is (its good lines are kept, the bad one is
 * refused by its line number), while a pretty-printed object with a typo is not (its inner lines
 * start with `"` or `}`) and gets the one JSON error.
 */
function isNdjson(lines: readonly string[]): boolean {
  const filled = lines.filter((l) => l.trim() !== '');
  return filled.length > 1 && filled.every((l) => l.trimStart().startsWith('{'));
}

/** Accepts one reading, a JSON array of readings, or NDJSON (by content type, or detected). */
export function parseReadingsBody(body: Buffer, contentType: string): ParsedBody {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 byte order mark (Windows editors, PowerShell)
  if (text.trim() === '') throw new HttpError(400, 'PW_EMPTY_BODY', 'the body is empty: send one reading, a JSON array of readings, or NDJSON');
  if (/ndjson|jsonlines|x-json-stream/i.test(contentType)) return parseNdjson(text.split(/\r?\n/));
  // One pass before JSON.parse: a body nested thousands deep blocked the event loop for seconds.
  const deep = deepNesting(text);
  if (deep !== null) {
    const lines = text.split(/\r?\n/);
    if (isNdjson(lines)) return parseNdjson(lines); // cut-off lines add up; each line is checked on its own
    throw new HttpError(400, 'PW_JSON_TOO_DEEP', `the body has ${tooDeepReason(`line ${deep.line}, column ${deep.column}`)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const lines = text.split(/\r?\n/);
    if (isNdjson(lines)) return parseNdjson(lines);
    throw new HttpError(400, 'PW_BAD_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (Array.isArray(value)) return { items: value.map((v, index) => ({ index, value: v, raw: '' })), lineErrors: [] };
  if (value !== null && typeof value === 'object') return { items: [{ index: 0, value, raw: text }], lineErrors: [] };
  throw new HttpError(400, 'PW_BAD_BODY', 'the body must be a reading object, a JSON array of readings, or NDJSON');
}

export function registerReadingsRoute(
  server: StatusServer,
  deps: { pipeline: IngestPipeline; maxBodyBytes: () => number; maxReadings: () => number; clock?: () => number },
): void {
  // Bodies held at once: one of the largest allowed, or many small ones (bench/ingest posts 1 000
  // readings, 130 kB, 4 at a time: never waits). A body of unknown length counts as the bytes it
  // has sent so far, and is refused (503, retry) when they no longer fit: waiting would hold the
  // bytes it has while it waits for others' (byte-budget.ts).
  const budget = new ByteBudget(deps.maxBodyBytes);
  server.route('POST', '/readings', async ({ req }) => {
    const limit = deps.maxBodyBytes();
    const declared = Number(req.headers['content-length']);
    let take: ((bytes: number) => void) | undefined;
    let release: () => void;
    if (Number.isFinite(declared)) {
      // A body declared over the limit is refused before it is read (readBody: 413): it needs no share.
      release = await budget.acquire(declared > limit ? 0 : declared);
    } else {
      const share = budget.growing();
      release = share.release;
      take = (bytes) => {
        if (!share.grow(bytes)) throw budgetFull();
      };
    }
    try {
      return await handle(req, take);
    } catch (err) {
      // Worded here for a write; the server maps other errors without knowing the method.
      throw err instanceof BufferError ? toHttpError(err, 'POST') : err;
    } finally {
      release();
    }
  });

  function budgetFull(): HttpError {
    const { used } = budget.status();
    return new HttpError(
      503,
      'PW_BODY_BUDGET_FULL',
      `the bodies being read (${used} bytes) leave no room for more of this one (PUMPWATCH_MAX_BODY_BYTES ${deps.maxBodyBytes()}); nothing was stored, retry later, or send a content-length to wait for a turn`,
      { retryAfterSeconds: 1 },
    );
  }

  /**
   * The body read and parsed. A function of its own so that nothing refers to the body's bytes
   * once it is parsed: a local of handle() would be kept through its await of the commit, by which
   * time a scavenge has moved the Buffer to the old generation, its 240 kB held until a full
   * collection (bench/ingest: most of the agent's ArrayBuffers at its RSS peak).
   */
  async function readParsed(req: IncomingMessage, take: ((bytes: number) => void) | undefined): Promise<{ parsed: ParsedBody; now: number }> {
    const body = await readBody(req, deps.maxBodyBytes(), take, settingNames('maxBodyBytes'));
    const now = (deps.clock ?? Date.now)();
    try {
      return { parsed: parseReadingsBody(body, req.headers['content-type'] ?? ''), now };
    } catch (err) {
      // Keep what could not be parsed, with the reason: nothing that reached the agent disappears.
      if (err instanceof HttpError) deps.pipeline.reject([{ source: 'http', raw: body.toString('utf8', 0, RAW_PREVIEW_CHARS), reason: err.message, receivedAt: now }]);
      throw err;
    }
  }

  async function handle(req: IncomingMessage, take: ((bytes: number) => void) | undefined): Promise<Reply> {
    const { parsed, now } = await readParsed(req, take);
    const total = parsed.items.length + parsed.lineErrors.length;
    if (total > deps.maxReadings()) {
      throw new HttpError(413, 'PW_TOO_MANY_READINGS', `${total} readings in one request, at most ${deps.maxReadings()} allowed (${settingNames('maxReadingsPerRequest')}); split the request`);
    }
    deps.pipeline.reject(parsed.lineErrors.map((e) => ({ source: 'http', raw: e.raw, reason: e.error, receivedAt: now })));
    const result = await deps.pipeline.ingest(
      parsed.items.map((i) => i.value),
      'http',
      (k) => parsed.items[k]!.raw || jsonPreview(parsed.items[k]!.value),
    );
    const rejected = [
      ...parsed.lineErrors.map((e) => ({ index: e.index, error: e.error })),
      ...result.rejected.map((r) => ({ index: parsed.items[r.index]!.index, error: r.error })),
    ].sort((a, b) => a.index - b.index);
    const answer = { accepted: result.accepted, rejected: rejected.slice(0, MAX_LISTED), rejectedTotal: rejected.length };
    if (result.accepted === 0) {
      const first = rejected[0];
      return {
        status: 400,
        json: {
          code: 'PW_NO_VALID_READINGS',
          // an empty array (or NDJSON of blank lines) holds no reading: "none of the 0 readings is valid" said it badly
          error: total === 0 ? 'the body holds no readings: send one reading, or an array or NDJSON of them' : `none of the ${total} readings is valid${first ? `; first problem (index ${first.index}): ${first.error}` : ''}`,
          ...answer,
        },
      };
    }
    return { status: 202, json: answer };
  }
}
