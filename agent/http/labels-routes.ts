import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { withdrawalFields, type LabelWithdrawal } from '../../buffer/label-withdrawals.js';
import type { EpisodeExtent } from '../../buffer/episodes.js';
import { episodeRunning, FOLLOW_HOLD_MS } from '../../buffer/label-follow.js';
import { FAULT_TYPES, LABEL_KINDS, MAX_LABEL_RANGE_MS, type LabelStore, type NewLabel } from '../../buffer/labels.js';
import type { BufferStore } from '../../buffer/store.js';
import { DEFAULT_LIMITS, PUMP_ID_PATTERN, showTime, timeBoundsProblem, type ValidationLimits } from '../ingest/validate.js';
import { PUMP_ID_RULE } from '../../sync/layout.js';
import { EPISODE_GAP_MS, labelJson, type EpisodeWalker } from './alerts-routes.js';
import { parseLimit, parseSince } from './query.js';
import { readBody } from './body.js';
import { HttpError } from './errors.js';
import type { StatusServer } from './server.js';

const MAX_BODY = 16 * 1024;

const time = z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })]).transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

/**
 * Control characters (C0, DEL, C1) and bidirectional overrides and isolates (U+202A–202E,
 * U+2066–2069) in a label's text: a label is shown on the page, listed by the trainer and
 * uploaded, and such characters make what is shown differ from what is stored (an override
 * reverses the text after it). A note may keep its line breaks and tabs (a textarea's).
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const CONTROL_OR_BREAK = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
function plain(schema: z.ZodString, pattern: RegExp): z.ZodType<string, string> {
  return schema.check((ctx) => {
    const m = pattern.exec(ctx.value);
    if (m === null) return;
    const code = `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    ctx.issues.push({ code: 'custom', input: ctx.value, message: `has a control or bidirectional-override character (${code} at character ${m.index + 1}), which is refused in a label's text` });
  });
}
const text = (max: number) => plain(z.string().trim().max(max), CONTROL);
const required = (max: number, message: string) => plain(z.string({ error: message }).trim().min(1, message).max(max), CONTROL_OR_BREAK);

/** The body of `POST /labels`. */
export const LabelBodySchema = z
  .object({
    // The rule a reading's pumpId follows: a label of a pump no reading can have labels nothing,
    // and its id went into the uploaded label and the page as given ("<b>x</b>\"><img …>/../ü").
    pumpId: z.string({ error: 'pumpId is required' }).regex(PUMP_ID_PATTERN, `must be ${PUMP_ID_RULE}`),
    kind: z.enum(LABEL_KINDS, { error: `kind must be one of ${LABEL_KINDS.join(', ')}` }),
    faultType: z.enum(FAULT_TYPES, { error: `faultType must be one of ${FAULT_TYPES.join(', ')}` }).nullish(),
    note: text(1000).nullish(),
    alertSeq: z.number().int().positive().nullish(),
    from: time.nullish(),
    to: time.nullish(),
    author: required(80, 'author is required: who is labelling (your name or id)'),
  })
  .strict();
export type LabelBody = z.infer<typeof LabelBodySchema>;

/** The body of `DELETE /labels/:id`: who withdraws the label (as a label's author is given) and why. */
export const WithdrawBodySchema = z
  .object({
    author: required(80, 'author is required: who is withdrawing the label (your name or id)'),
    note: text(1000).nullish(),
  })
  .strict();

function describe(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

function bad(message: string): HttpError {
  return new HttpError(400, 'PW_BAD_LABEL', message);
}

/** How far from the gateway clock a label's `from` and `to` may lie: the bounds of a reading's `ts`. */
export type LabelTimeLimits = Pick<ValidationLimits, 'maxFutureMs' | 'maxPastMs'>;

/**
 * A time a technician gave (`from` or `to`) within the bounds a reading's `ts` has, worded as a
 * reading's refusal is (timeBoundsProblem). Before, any non-negative integer was stored: one beyond
 * the year 275760 (epoch microseconds sent as milliseconds) got a 500 after it was stored, and from
 * then on broke GET /labels and the upload of every later label.
 */
function checkTime(field: 'from' | 'to', ms: number, now: number, limits: LabelTimeLimits): void {
  const problem = timeBoundsProblem(field, ms, now, limits);
  if (problem !== null) throw bad(problem);
}

/**
 * Applies the rules that tie fields together and resolves the time range (the alert's own time
 * when not given, which the route then widens to the alert's episode: widenToEpisode). Times given are bounded around `now` as a reading's are; an alert's own time passed
 * those bounds when the reading came in.
 */
export function toNewLabel(body: LabelBody, labels: LabelStore, now = Date.now(), limits: LabelTimeLimits = DEFAULT_LIMITS): NewLabel {
  if (body.kind === 'confirmed-fault' && !body.faultType) throw bad('faultType is required for a confirmed fault');
  if (body.kind !== 'confirmed-fault' && body.faultType) throw bad(`faultType applies only to a confirmed fault, not to ${body.kind}`);
  let fromTs = body.from ?? null;
  let toTs = body.to ?? null;
  if ((fromTs === null) !== (toTs === null)) throw bad('give both from and to, or neither');
  let alertTs: number | null = null;
  if (body.alertSeq != null) {
    const alert = labels.reading(body.alertSeq);
    if (!alert) throw new HttpError(404, 'PW_ALERT_NOT_FOUND', `alert ${body.alertSeq} is no longer in the buffer`);
    if (alert.pumpId !== body.pumpId) throw bad(`alert ${body.alertSeq} belongs to pump ${alert.pumpId}, not ${body.pumpId}`);
    if (body.kind === 'false-alarm' && alert.anomaly !== true) throw bad(`reading ${body.alertSeq} is not an alert, so it cannot be a false alarm`);
    alertTs = alert.ts;
    fromTs ??= alert.ts;
    toTs ??= alert.ts;
  }
  if (fromTs === null || toTs === null) {
    throw bad(body.kind === 'maintenance' ? 'maintenance needs a time range: from and to' : `${body.kind} needs an alertSeq or a time range (from and to)`);
  }
  if (toTs < fromTs) throw bad('to is before from');
  // A label covers its range and nothing else (GET /alerts, the trainer): one naming an alert outside it would label another stretch.
  if (alertTs !== null && (alertTs < fromTs || alertTs > toTs)) {
    throw bad(`alert ${body.alertSeq} at ${showTime(alertTs)} lies outside from ${showTime(fromTs)} – to ${showTime(toTs)}: give a range that holds it, or none (its episode)`);
  }
  if (toTs - fromTs > MAX_LABEL_RANGE_MS) throw bad('the time range is longer than a year');
  if (body.from != null) checkTime('from', fromTs, now, limits);
  if (body.to != null) checkTime('to', toTs, now, limits);
  return {
    pumpId: body.pumpId,
    kind: body.kind,
    faultType: body.faultType ?? null,
    note: body.note ? body.note : null,
    alertSeq: body.alertSeq ?? null,
    fromTs,
    toTs,
    author: body.author,
  };
}

/**
 * A label given an alert and no time range covers the alert's whole episode (EPISODE_GAP_MS, the
 * walk GET /alerts/:seq/episode answers and the page labels by), from its first alert to its last:
 * the trainer reads a label's stored range reading by reading, and before, such a label (the
 * README's own example, what a CMMS posts) was stored over the alert's one reading while the
 * episode view showed it as the episode's label, so the other alerts of a confirmed fault trained
 * as normal. A range given is kept as given (the page may label part of an episode on purpose); a
 * reading that is not an alert (a fault the model missed) keeps its own time. `extent`: the
 * episode widened to, null when the label keeps its range.
 */
async function widenToEpisode(label: NewLabel, body: LabelBody, episodes: EpisodeWalker): Promise<{ label: NewLabel; extent: EpisodeExtent | null }> {
  if (body.alertSeq == null || body.from != null || body.to != null) return { label, extent: null };
  const found = await episodes(body.alertSeq);
  if (found.extent === null) {
    if (found.reason === 'not-alert') return { label, extent: null };
    throw new HttpError(404, 'PW_ALERT_NOT_FOUND', `alert ${body.alertSeq} is no longer in the buffer`);
  }
  const { first, last } = found.extent;
  if (last.ts - first.ts > MAX_LABEL_RANGE_MS) {
    throw bad(`the episode of alert ${body.alertSeq} runs from ${showTime(first.ts)} to ${showTime(last.ts)}, longer than a year: give from and to`);
  }
  return { label: { ...label, fromTs: first.ts, toTs: last.ts }, extent: found.extent };
}

/**
 * A label widened to an episode that is still running (buffer/label-follow.ts episodeRunning) is
 * stored open: it follows the episode to its end, as the page's "label this alert" means, and the
 * answer says so. Before, it covered the episode as it stood at the post, and the alerts after it
 * were uploaded unlabelled.
 */
function followIfRunning(label: NewLabel, extent: EpisodeExtent | null, buffer: BufferStore, now: number): NewLabel {
  return { ...label, followsEpisode: extent !== null && episodeRunning(buffer, extent, now, EPISODE_GAP_MS) };
}

/** The sentence of a 201 for an open label. */
function followingText(pumpId: string): string {
  return (
    `The alarm of ${pumpId} is still going on: this label will follow it until it ends (its readings go ${EPISODE_GAP_MS / 1000} s without an alert, ` +
    `or ${FOLLOW_HOLD_MS / 60_000} min pass after its last alert), covering all of it, and be uploaded then.`
  );
}

/**
 * `POST /labels` (a technician's verdict), `DELETE /labels/:id` (its withdrawal) and
 * `GET /labels?pumpId=&since=&limit=&withdrawn=`. `limits`: the
 * readings' time bounds in force (PUMPWATCH_MAX_FUTURE_SECONDS, PUMPWATCH_MAX_PAST_SECONDS; default
 * their defaults); `buffer`: where a label's episode is found still running or not.
 */
export function registerLabelsRoutes(
  server: StatusServer,
  deps: { labels: LabelStore; buffer: BufferStore; episodes: EpisodeWalker; clock?: () => number; limits?: () => LabelTimeLimits },
): void {
  server.route('POST', '/labels', async ({ req }) => {
    const parsed = LabelBodySchema.safeParse(await readJson(req));
    if (!parsed.success) throw bad(describe(parsed.error));
    const now = (deps.clock ?? Date.now)();
    const resolved = toNewLabel(parsed.data, deps.labels, now, deps.limits?.() ?? DEFAULT_LIMITS);
    const widened = await widenToEpisode(resolved, parsed.data, deps.episodes);
    // the clock after the walk: a long one must not keep an episode that ended meanwhile open
    const label = deps.labels.add(followIfRunning(widened.label, widened.extent, deps.buffer, (deps.clock ?? Date.now)()), now);
    return { status: 201, json: { label: labelJson(label), ...(label.followsEpisode ? { message: followingText(label.pumpId) } : {}) } };
  });
  // A wrong label (wrong pump, wrong episode) goes back to "no label": a withdrawal is stored beside
  // it, never an edit of it (PUT is not a route: a change is a new label), and is uploaded for the
  // trainer. The server's origin and token rules guard DELETE as they guard POST (server.ts).
  server.route('DELETE', '/labels/:id', async ({ req, params }) => {
    const parsed = WithdrawBodySchema.safeParse(await readJson(req));
    if (!parsed.success) throw new HttpError(400, 'PW_BAD_LABEL', describe(parsed.error));
    const id = params.id!;
    const done = deps.labels.withdrawals.withdraw(id, { author: parsed.data.author, note: parsed.data.note ? parsed.data.note : null }, (deps.clock ?? Date.now)());
    if (done.outcome === 'not-found') throw new HttpError(404, 'PW_LABEL_NOT_FOUND', `no label ${JSON.stringify(id.slice(0, 80))} in this gateway's buffer (GET /labels lists them)`);
    if (done.outcome === 'already') {
      const w = done.withdrawal;
      throw new HttpError(409, 'PW_LABEL_WITHDRAWN', `label ${id} was withdrawn already, by ${w.author} at ${new Date(w.createdAt).toISOString()}`, { withdrawal: withdrawalJson(w) });
    }
    return { status: 201, json: { withdrawal: withdrawalJson(done.withdrawal) } };
  });
  server.route('GET', '/labels', ({ url }) => {
    const pumpId = url.searchParams.get('pumpId') || undefined;
    const sinceTs = parseSince(url.searchParams.get('since'));
    const limit = parseLimit(url.searchParams.get('limit'), 100, 1000);
    const withdrawn = parseWithdrawn(url.searchParams.get('withdrawn'));
    const found = deps.labels.list({ pumpId, sinceTs, limit, withdrawn });
    const of = withdrawn ? deps.labels.withdrawals.of(found.map((l) => l.id)) : null;
    const labels = found.map((l) => {
      if (of === null) return labelJson(l);
      const w = of.get(l.id);
      return { ...labelJson(l), withdrawal: w ? withdrawalJson(w) : null };
    });
    return { status: 200, json: { count: labels.length, labels } };
  });
}

/** A request body as JSON, or 400 PW_BAD_JSON saying why not. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const raw = (await readBody(req, MAX_BODY)).toString('utf8');
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new HttpError(400, 'PW_BAD_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `withdrawn=1` lists withdrawn labels too, each with its withdrawal; `0` or absent, as before. */
function parseWithdrawn(text: string | null): boolean {
  if (text === null || text === '0') return false;
  if (text === '1') return true;
  throw new HttpError(400, 'PW_BAD_QUERY', `withdrawn: "${text.slice(0, 40)}" must be 1 (list withdrawn labels too) or 0`);
}

function withdrawalJson(w: LabelWithdrawal): Record<string, unknown> {
  return { ...withdrawalFields(w), synced: w.synced };
}
