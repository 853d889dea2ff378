// The selected pump's alert history: every alert of it the gateway keeps, newest first, a page at a
// time (GET /alerts?pumpId=&limit=&before=, the agent's keyset paging, so a page deep in the history
// costs what the first does), grouped into episodes as the recent list is, each one labellable. The
// recent list shows the newest 15 episodes; this is how a technician reads last week's. "Show alerts
// before" starts the list at a chosen time instead of the newest alert (`before=<T>:0`), so last
// Tuesday is one step away, not dozens of "Show older alerts".
//
// Not live: it is read when opened, for another pump, on "Reload", after the agent restarts or
// comes back after a failed read, and after a label is saved (down to the oldest alert read before,
// however many alerts came meanwhile, so the labelled episode stays on screen with its label). A
// chosen time stays until "Newest alerts" or another pump: those reads start from it too.
import { api } from './api.js';
import { EPISODE_GAP_MS, episodeItem, groupEpisodes } from './alerts.js';
import { gatewayNow } from './clock.js';
import { fmtClock, fmtTime } from './format.js';

/** Alerts asked for per page: about 100 kB of JSON, quick on a phone over the site's Wi-Fi. */
export const HISTORY_PAGE = 200;
/**
 * At most this many pages are read to get back down to the oldest alert read before a re-read
 * (10 000 alerts: nearly three hours of a pump alerting every second).
 */
export const MAX_PAGES_PER_READ = 50;
/**
 * At most this many pages are read each way to find an episode's ends before labelling it (50 000
 * alerts: about fourteen hours of a pump alerting every second). A longer episode is not labelled:
 * a label must cover all of it, and one over the part read would teach the trainer that the rest
 * was normal. The page says so.
 */
export const MAX_PAGES_TO_LABEL = 250;
/**
 * How far past an episode's newest alert one step of reading its newer alerts goes. The agent
 * answers newest first only, so each step reads the whole span down to that alert: ten minutes is
 * three pages at one alert a second, and at most that much is read past the episode's end.
 */
const FORWARD_SPAN_MS = 10 * 60_000;

const alertsPage = (pumpId, before, since) =>
  api(
    `/alerts?pumpId=${encodeURIComponent(pumpId)}&limit=${HISTORY_PAGE}${since === undefined ? '' : `&since=${since}`}${before ? `&before=${encodeURIComponent(before)}` : ''}`,
  );

/** What the page says while it reads an episode whole before labelling it, `n` alerts read so far (both lists). */
export const readingWholeText = (n) => `Reading the whole episode before labelling it: ${n.toLocaleString('en-US')} alerts read…`;

/** The cursor of the alerts after `a` in the list's order (the `next` of a page ending at it). */
const cursorAfter = (a) => `${Date.parse(a.ts)}:${a.seq}`;
/** The cursor of every alert with ts < `ms`: the agent reads `ts <= T AND (ts < T OR seq < 0)`, and seqs start at 1. */
const cursorBefore = (ms) => `${ms}:0`;

/** The list's order: newest reading time first, ties by the later committed first (as the agent answers). */
const newerThan = (a, b) => {
  const ta = Date.parse(a.ts);
  const tb = Date.parse(b.ts);
  return ta > tb || (ta === tb && a.seq > b.seq);
};

/** The episode of `alerts` (newest first) that holds the alert `seq`. */
const episodeOf = (alerts, seq) => groupEpisodes(alerts).find((e) => e.alerts.some((a) => a.seq === seq));

/** Whether the episode holding the alert `seq` is still the oldest in `alerts` (no older alert an episode's gap below it). */
const stillOldest = (alerts, seq) => groupEpisodes(alerts).at(-1).alerts.some((a) => a.seq === seq);

/**
 * For alerts of one pump read back (newest first) from below the alert `from`, a page at a time:
 * true once one of them lies more than an episode's gap below the alert after it, i.e. the episode
 * holding `from` began above it. Looks at each alert once (250 pages regrouped at every page took
 * seconds of a phone's main thread).
 */
function beganAbove(from) {
  let last = from;
  let seen = 0;
  let found = false;
  return (older) => {
    for (; seen < older.length && !found; seen++) {
      const a = older[seen];
      if (Date.parse(last.ts) - Date.parse(a.ts) > EPISODE_GAP_MS) found = true;
      else last = a;
    }
    return found;
  };
}

/**
 * Reads a pump's alerts a page at a time, newest first, from the cursor `before` (null: the newest),
 * with ts ≥ `since` when given, until `enough(alerts, next)` after a page, the end (`next` null), or
 * `maxPages` pages → { alerts, next, pages }; `onPage(n)` after each page with the alerts read so
 * far. Throws the ApiError of a failed read.
 */
async function readPages(pumpId, { before = null, since, enough = () => false, maxPages = MAX_PAGES_PER_READ, onPage = () => undefined }) {
  const alerts = [];
  let next = before;
  let pages = 0;
  while (pages < maxPages) {
    const res = await alertsPage(pumpId, next, since);
    alerts.push(...res.alerts);
    next = res.next;
    pages += 1;
    onPage(alerts.length);
    if (next === null || enough(alerts, next)) break;
  }
  return { alerts, next, pages };
}

/**
 * The whole of an episode whose older alerts were not read (`partial`): its pump's alerts read back
 * from its oldest one until an older alert is more than an episode's gap below it, or none is left
 * (at most MAX_PAGES_TO_LABEL pages) → { episode, complete, read }: `complete` false when its
 * beginning was not found within them, `read` the alerts read. Throws the ApiError of a failed read.
 */
export async function wholeEpisode(ep, onPage) {
  const begun = beganAbove(ep.first);
  const { alerts, next } = await readPages(ep.pumpId, { before: cursorAfter(ep.first), enough: begun, maxPages: MAX_PAGES_TO_LABEL, onPage });
  return { episode: episodeOf([...ep.alerts, ...alerts], ep.first.seq) ?? ep, complete: next === null || begun(alerts), read: alerts.length };
}

/**
 * The alerts that carry `ep` on after its newest one (each at most an episode's gap after the one
 * before it), newest first, read forward a span at a time → { alerts, complete, read }: `complete`
 * false when MAX_PAGES_TO_LABEL pages went by before its end was found, or `stopped()` turned true
 * (the list is read for another pump or agent), `read` the alerts read. Throws the ApiError of a
 * failed read.
 */
export async function newerPart(ep, onPage = () => undefined, stopped = () => false) {
  const newer = [];
  let last = ep.last;
  let pages = 0;
  let read = 0;
  while (pages < MAX_PAGES_TO_LABEL && !stopped()) {
    const from = Date.parse(last.ts);
    const span = await readPages(ep.pumpId, {
      since: from,
      before: cursorBefore(from + FORWARD_SPAN_MS),
      maxPages: MAX_PAGES_TO_LABEL - pages,
      onPage: (n) => onPage(read + n),
      enough: stopped,
    });
    pages += span.pages;
    read += span.alerts.length;
    if (span.next !== null || stopped()) break; // the span's older alerts are missing: a gap seen now may be none
    for (const a of span.alerts.filter((x) => newerThan(x, last)).reverse()) {
      if (Date.parse(a.ts) - Date.parse(last.ts) > EPISODE_GAP_MS) return { alerts: newer, complete: true, read };
      newer.unshift(a);
      last = a;
    }
    // no gap in the span: the episode ended unless an alert may follow `last` within a gap past the span
    if (Date.parse(last.ts) + EPISODE_GAP_MS < from + FORWARD_SPAN_MS) return { alerts: newer, complete: true, read };
  }
  return { alerts: newer, complete: false, read };
}

/**
 * parts: the <details> and its elements (summary, note, list, more, reload; jump: the "Show alerts
 * before" form with its input `when` and button `go`, newest: "Newest alerts"); onLabel(episode)
 * opens the label dialog; onFailure(err) is the page's own handling of a failed request (sign-in,
 * agent down).
 */
export function initHistory({ details, summary, note, list, more, reload, jump, when, go, newest, onLabel, onFailure }) {
  const h = {
    pumpId: null,
    /** The time asked for, epoch ms: reads start at the newest alert before it; null: at the newest alert. */
    before: null,
    /**
     * The alerts read so far, newest first, the time they were read from (`top`, as `before`: the
     * list on screen until a read from another time succeeds) and the cursor of the next page
     * (null: all are read).
     */
    alerts: [],
    top: null,
    next: null,
    loadedAt: null,
    /** The last read failed (what it said): read again when the agent answers again. */
    failed: null,
    /** What was asked cannot be done (a time that is no time, a label refused): said until the next step. */
    problem: null,
    /** A read is running (one at a time: `queue` chains them), and how far a long one is. */
    busy: false,
    progress: null,
    queue: Promise.resolve(),
    /** Bumped for another pump or a restarted agent: an answer read for the old one is dropped. */
    generation: 0,
  };

  function setNote(text) {
    if (note.textContent !== text) note.textContent = text;
  }

  const timeText = (ms) => fmtTime(new Date(ms).toISOString());
  /** Says how far a long read is, in the note, while it runs. */
  const progress = (n) => {
    h.progress = readingWholeText(n);
    render();
  };
  const tooLong = (n, where) =>
    `Not labelled: its ${where} was not found within the ${n.toLocaleString('en-US')} alerts read, and a label must cover all of the episode (one over part of it would tell the model the rest was normal).`;

  /**
   * Labels an episode whole: reading older pages first when it may have begun before the oldest
   * alert read, and its newer alerts when it may go on past the list's top. Not labelled when a
   * read fails, the list is read for another pump or agent meanwhile, or an end is not found
   * within MAX_PAGES_TO_LABEL pages: the note says why.
   */
  async function labelWhole(ep) {
    const generation = h.generation;
    let whole = ep;
    if (ep.partial) {
      const before = h.alerts.length;
      // until an older alert more than an episode's gap below it is read, or the history ends
      // (the oldest episode read: its first alert is the oldest read, where the read goes on from)
      const begun = beganAbove(ep.first);
      await readOlder((older, next) => next === null || begun(older), { maxPages: MAX_PAGES_TO_LABEL, onPage: progress });
      if (h.failed !== null || generation !== h.generation) return undefined; // the label would cover part of it
      if (h.next !== null && stillOldest(h.alerts, ep.first.seq)) return refuseLabel(tooLong(h.alerts.length - before, 'beginning'));
      whole = episodeOf(h.alerts, ep.first.seq) ?? ep;
    }
    if (ep.continuesAfter) {
      const newer = await readNewer(whole, ep.continuesAfter);
      if (newer === null || generation !== h.generation) return undefined; // the note says why
      whole = episodeOf([...newer, ...whole.alerts], ep.first.seq) ?? whole;
    }
    return onLabel(whole);
  }

  function refuseLabel(text) {
    h.problem = text;
    render();
    return undefined;
  }

  /**
   * The alerts past the list's top (`after`, ISO) that carry `ep` on; null when they could not all be
   * read (the note says why), or the list is read for another pump or agent meanwhile.
   */
  async function readNewer(ep, after) {
    let newer = null;
    await run(async (generation) => {
      const part = await newerPart(ep, progress, () => generation !== h.generation);
      if (generation !== h.generation) return;
      if (part.complete) newer = part.alerts;
      else h.problem = tooLong(part.read, `end after ${fmtTime(after)}`);
    });
    return newer;
  }

  function render() {
    const episodes = groupEpisodes(h.alerts);
    const focused = document.activeElement;
    const hadFocus = focused === more;
    const newestHadFocus = focused === newest;
    const keptFirst = focused?.closest?.('#history-list li')?.dataset.first ?? null;
    const top = h.top === null ? null : new Date(h.top).toISOString();
    list.replaceChildren(
      ...episodes.map((ep, i) => {
        // the oldest episode read may have begun before the oldest alert read
        ep.partial = i === episodes.length - 1 && h.next !== null;
        // the newest, when less than an episode's gap below the top of the list shown, may go on after it
        ep.continuesAfter = i === 0 && top !== null && h.top - Date.parse(ep.last.ts) <= EPISODE_GAP_MS ? top : null;
        return episodeItem(ep, labelWhole);
      }),
    );
    // the focused episode's item, found by the alert it began with: older alerts read may have moved its beginning
    const kept = keptFirst === null ? -1 : episodes.findIndex((ep) => ep.alerts.some((a) => String(a.seq) === keptFirst));
    // The controls stay where they are while a read runs (aria-disabled, clicks ignored): a button
    // hidden or disabled under the keyboard's focus drops the focus to the page's body.
    const loading = h.busy;
    more.hidden = h.next === null && !(loading && hadFocus);
    newest.hidden = h.before === null && h.top === null && !(loading && newestHadFocus);
    for (const b of [more, reload, go, newest]) b.setAttribute('aria-disabled', String(loading));
    if (keptFirst !== null) list.children[kept]?.querySelector('button')?.focus();
    else if (hadFocus && more.hidden) list.querySelector('li:last-child button')?.focus();
    else if (newestHadFocus && newest.hidden) when.focus();
    if (loading) return setNote(h.progress ?? 'Loading…');
    if (h.problem !== null) return setNote(h.problem);
    if (h.failed !== null) return setNote(h.failed);
    if (h.loadedAt === null) return setNote('');
    const loaded = ` Loaded at ${fmtClock(h.loadedAt)}; not live.`;
    if (h.alerts.length === 0) {
      return setNote(top === null ? `No alerts of this pump in the gateway’s buffer.${loaded}` : `No alerts of this pump before ${timeText(h.top)} in the gateway’s buffer.${loaded}`);
    }
    const from = top === null ? '' : `Before ${timeText(h.top)} (newer alerts not shown: “Newest alerts” shows them): `;
    const n = h.alerts.length;
    const m = episodes.length;
    const extent = h.next === null ? 'all the gateway keeps of this pump' : 'older ones not read yet';
    setNote(`${from}${n} alert${n === 1 ? '' : 's'} in ${m} episode${m === 1 ? '' : 's'}, ${fmtTime(h.alerts.at(-1).ts)} to ${fmtTime(h.alerts[0].ts)}, newest first: ${extent}.${loaded}`);
  }

  /** Runs one read at a time, in order; `work` gets the generation it belongs to. */
  function run(work) {
    const generation = h.generation;
    const task = h.queue.then(async () => {
      if (generation !== h.generation) return;
      h.busy = true;
      h.problem = null;
      render();
      try {
        await work(generation);
        if (generation === h.generation) h.failed = null;
      } catch (err) {
        if (generation !== h.generation) return;
        h.failed = `The alert history could not be read: ${err?.message ?? err}`;
        onFailure(err);
      } finally {
        h.busy = false;
        h.progress = null;
        render();
      }
    });
    h.queue = task.catch(() => {});
    return task;
  }

  /**
   * Reads from the list's top (the newest alert, or the chosen time) down to what `until()` gives
   * (an alert read before: at least down to it), else one page; fewer when the history ends first,
   * at most MAX_PAGES_PER_READ.
   */
  function load(until = () => null) {
    return run(async (generation) => {
      const target = until(); // when the read starts: after the reads queued before it
      const top = h.before;
      const { alerts, next } = await readPages(h.pumpId, {
        before: top === null ? null : cursorBefore(top),
        enough: (read) => generation !== h.generation || target === null || !newerThan(read.at(-1), target),
      });
      if (generation !== h.generation) return;
      Object.assign(h, { alerts, top, next, loadedAt: new Date(gatewayNow()).toISOString() });
    });
  }

  /** Reads older pages: one, or until `enough(older, next)` of the alerts read so far by it (at most `maxPages`, `onPage` as readPages). */
  function readOlder(enough = () => true, { maxPages = MAX_PAGES_PER_READ, onPage } = {}) {
    return run(async (generation) => {
      if (h.next === null) return;
      const res = await readPages(h.pumpId, {
        before: h.next,
        enough: (older, next) => generation !== h.generation || enough(older, next),
        maxPages,
        onPage,
      });
      if (generation !== h.generation) return;
      const seen = new Set(h.alerts.map((a) => a.seq));
      h.alerts.push(...res.alerts.filter((a) => !seen.has(a.seq)));
      h.next = res.next;
    });
  }

  /** Read again down to the oldest alert read (a label saved, a Reload), or one page when none was. */
  const reread = () => load(() => h.alerts.at(-1) ?? null);

  details.addEventListener('toggle', () => {
    if (details.open && h.loadedAt === null && !h.busy) void load();
  });
  const unlessBusy = (fn) => () => {
    if (!h.busy) void fn();
  };
  more.addEventListener('click', unlessBusy(() => readOlder()));
  reload.addEventListener('click', unlessBusy(reread));
  newest.addEventListener(
    'click',
    unlessBusy(() => {
      h.before = null;
      when.value = '';
      return load();
    }),
  );

  /** A time that cannot be the list's top: said in the note, the input marked, the list as it was. */
  function refuse(text) {
    h.problem = text;
    when.setAttribute('aria-invalid', 'true');
    render();
    when.focus();
  }

  jump.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (h.busy) return;
    // the input is in this browser's time zone, as every time on the page; the instant is the gateway's
    const ms = Date.parse(when.value);
    if (!Number.isFinite(ms)) return refuse('Enter a date and time: the list then starts at the newest alert before it.');
    const now = gatewayNow();
    if (ms > now) {
      return refuse(`${fmtTime(new Date(ms).toISOString())} is after the gateway’s time now (${fmtTime(new Date(now).toISOString())}): choose an earlier time.`);
    }
    when.removeAttribute('aria-invalid');
    h.before = ms;
    void load();
  });
  when.addEventListener('input', () => {
    when.removeAttribute('aria-invalid');
    if (h.problem === null) return;
    h.problem = null;
    render();
  });

  /** Forgets what was read (another pump, another buffer); an answer on its way is dropped. */
  function forget() {
    Object.assign(h, { alerts: [], top: null, next: null, loadedAt: null, failed: null, problem: null });
    h.generation += 1;
    render();
  }

  return {
    /**
     * The selected pump: another one starts from its newest alerts (read now when the history is
     * open); a time chosen for the last one is not carried over.
     */
    select(pumpId) {
      if (pumpId === h.pumpId) return;
      h.pumpId = pumpId;
      h.before = null;
      when.value = '';
      when.removeAttribute('aria-invalid');
      summary.textContent = `Alert history of ${pumpId}`;
      forget();
      if (details.open) void load();
    },
    /**
     * Read again, when open (else afresh when opened): after a label is saved, down to the oldest
     * alert read; after the agent restarted (`restarted`: its buffer may be another one, whose
     * alerts share sequence numbers with the old), from scratch, from the chosen time if any.
     */
    refresh({ restarted = false } = {}) {
      if (restarted) forget();
      if (!details.open) {
        h.loadedAt = null;
        return undefined;
      }
      return restarted || h.loadedAt === null ? load() : reread();
    },
    /** The agent answers again: a read that failed meanwhile is made again. */
    reconnected() {
      if (h.failed !== null && details.open && !h.busy) void (h.loadedAt === null ? load() : reread());
    },
  };
}
