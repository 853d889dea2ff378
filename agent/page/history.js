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
// chosen time stays until "Newest alerts" or another pump: those reads start from it too. An
// episode a read cuts (its oldest, its newest below a chosen time) is completed from the agent once
// per read: its label, where it began and where it ends (`complete`).
import { ApiError, TIMED_OUT, api } from './api.js';
import { EPISODE_GAP_MS, episodeItem, groupEpisodes, itemButton, withWhole } from './alerts.js';
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
 * How long the agent may take to bound an episode (GET /alerts/:seq/episode): it walks the episode's
 * alerts in pieces, about 1.5 s a million of them here, and one walk at a time.
 */
const EPISODE_TIMEOUT_MS = 60_000;

const alertsPage = (pumpId, before) => api(`/alerts?pumpId=${encodeURIComponent(pumpId)}&limit=${HISTORY_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`);

/**
 * When `wholeEpisode` failed (both lists): the line saying why nothing was labelled (a label over the
 * part listed would tell the model the rest was normal), and whether the page's own failure handling
 * must see the error too (the agent down, a sign-in), not a refused request or a slow walk, which the
 * line says.
 */
export const notLabelled = (err) => ({
  text: `Not labelled: the whole episode could not be read: ${err?.message ?? err}`,
  pageFailure: err instanceof ApiError && err.kind !== 'bad-request',
});

/** What the page says while the agent bounds an episode for a label (both lists). */
export const FINDING_WHOLE = 'Finding the whole episode before labelling it…';

/** The cursor of every alert with ts < `ms`: the agent reads its time's alerts with seq < 0 (none: seqs start at 1), then those with ts < T. */
const cursorBefore = (ms) => `${ms}:0`;

/** The list's order: newest reading time first, ties by the later committed first (as the agent answers). */
const newerThan = (a, b) => {
  const ta = Date.parse(a.ts);
  const tb = Date.parse(b.ts);
  return ta > tb || (ta === tb && a.seq > b.seq);
};

/**
 * Reads a pump's alerts a page at a time, newest first, from the cursor `before` (null: the newest),
 * until `enough(alerts, next)` after a page, the end (`next` null), or MAX_PAGES_PER_READ pages →
 * { alerts, next }. Throws the ApiError of a failed read.
 */
async function readPages(pumpId, { before = null, enough = () => false }) {
  const alerts = [];
  let next = before;
  for (let pages = 0; pages < MAX_PAGES_PER_READ; pages++) {
    const res = await alertsPage(pumpId, next);
    alerts.push(...res.alerts);
    next = res.next;
    if (next === null || enough(alerts, next)) break;
  }
  return { alerts, next };
}

/**
 * The whole of the episode `ep` of a list, which may hold only part of it (begun before the oldest
 * alert read, or going on after the list's top), as the agent bounds it (GET /alerts/:seq/episode,
 * however long it is): `ep` with the agent's first, last and peak alert and its `count`, for the
 * label dialog. A label must cover all of an episode: one over the part listed would tell the model
 * the rest was normal. Throws the ApiError of a failed read, or an Error when the agent took too
 * long or its episode does not hold the alerts listed (its buffer changed since they were read).
 */
export async function wholeEpisode(ep) {
  const ask = (seq) => api(`/alerts/${seq}/episode?pumpId=${encodeURIComponent(ep.pumpId)}`, { timeoutMs: EPISODE_TIMEOUT_MS });
  let whole;
  // the oldest alert listed was evicted meanwhile (the oldest kept is the next to go): asked by the newest
  let byLast = false;
  try {
    whole = await ask(ep.first.seq).catch((err) => {
      if (!(err instanceof ApiError && err.code === 'PW_ALERT_NOT_FOUND' && ep.last.seq !== ep.first.seq)) throw err;
      byLast = true;
      return ask(ep.last.seq);
    });
  } catch (err) {
    if (err instanceof ApiError && err.code === TIMED_OUT) {
      // the agent answers, but its walk of the episode took longer than the page waits: not a lost agent
      throw new Error(`the gateway took longer than ${EPISODE_TIMEOUT_MS / 1000} s to find all of it: try again in a minute`);
    }
    throw err;
  }
  const from = Date.parse(whole.first.ts);
  // asked by the newest, the agent's episode begins after the evicted alerts listed: they are its part before
  const gone = byLast ? ep.alerts.filter((a) => Date.parse(a.ts) < from) : [];
  const holds = (byLast || (from <= Date.parse(ep.first.ts) && whole.count >= ep.alerts.length)) && Date.parse(whole.last.ts) >= Date.parse(ep.last.ts);
  if (!holds) throw new Error(`the gateway’s alerts of ${ep.pumpId} changed since they were listed: reload them, then label again`);
  // evicted alerts were most likely uploaded already (eviction takes uploaded rows first): the label covers them too
  const first = gone.length > 0 ? ep.first : whole.first;
  // the episode's label, which its alerts listed may not carry (saved while the pump was still in alarm);
  // `beforeAgent`: it begins before the agent's episode, so its label is sent with its range
  return { ...ep, first, last: whole.last, peak: whole.peak, count: whole.count + gone.length, label: whole.label ?? ep.label, beforeAgent: gone.length > 0 };
}

/**
 * parts: the <details> and its elements (summary, note, list, more, reload; jump: the "Show alerts
 * before" form with its input `when` and button `go`, newest: "Newest alerts"); onLabel(episode)
 * opens the label dialog, onWithdraw(episode) the withdraw dialog for its label; onFailure(err) is the page's own handling of a failed request (sign-in,
 * agent down).
 */
export function initHistory({ details, summary, note, list, more, reload, jump, when, go, newest, onLabel, onWithdraw, onFailure }) {
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
    /** A read is running (one at a time: `queue` chains them). */
    busy: false,
    /** The generation an episode is being bounded in for a label (one at a time), else null. */
    finding: null,
    queue: Promise.resolve(),
    /** Bumped for another pump or a restarted agent: an answer read for the old one is dropped. */
    generation: 0,
    /**
     * The agent's answers on the cut episodes of the alerts read (`complete`), by the seq of their
     * oldest alert read (null: asked, or failed); a new map at each read.
     */
    wholes: new Map(),
  };

  function setNote(text) {
    if (note.textContent !== text) note.textContent = text;
  }

  const timeText = (ms) => fmtTime(new Date(ms).toISOString());

  /**
   * Labels an episode whole, as the agent bounds it (`wholeEpisode`), whatever part of it the list
   * holds. Not labelled when that read fails (the note says why) or the list is read for another
   * pump or agent meanwhile. Outside the reads' queue: another pump's history is not kept waiting.
   */
  async function labelWhole(ep) {
    if (h.finding === h.generation) return undefined; // a second press while its episode is read
    const generation = h.generation;
    h.finding = generation;
    h.problem = null;
    render();
    try {
      const whole = await wholeEpisode(ep);
      // the dialog gives the focus back to the episode's button, found by the alert it was listed with
      return generation === h.generation ? onLabel(whole, ep.first.seq) : undefined;
    } catch (err) {
      if (generation !== h.generation) return undefined;
      const why = notLabelled(err);
      h.problem = why.text;
      if (why.pageFailure) onFailure(err);
      return undefined;
    } finally {
      if (h.finding === generation) h.finding = null;
      render();
    }
  }

  /**
   * Completes an episode the list cut (begun before the oldest alert read, or going on after the
   * chosen time) with what the agent says of the whole of it (GET /alerts/:seq/episode): its label,
   * which may sit on alerts not read (one saved while the pump was still in alarm covers the
   * episode up to then, and none of its newest alerts carry it: the item said "Label this alert"),
   * where it began and where it ends. Asked once per read of the list, in the background: the list
   * is drawn again with the answer. A failed answer leaves the item as read. Returns the episode to
   * draw (`ep` until the answer).
   */
  function complete(ep) {
    const key = String(ep.first.seq);
    const { wholes } = h;
    if (!wholes.has(key)) {
      wholes.set(key, null);
      const ask = api(`/alerts/${key}/episode?pumpId=${encodeURIComponent(ep.pumpId)}`, { timeoutMs: EPISODE_TIMEOUT_MS });
      void ask.then(
        (whole) => {
          if (h.wholes !== wholes) return; // read again meanwhile, or another pump, another agent
          wholes.set(key, whole);
          render();
        },
        () => undefined,
      );
      return ep;
    }
    const whole = wholes.get(key);
    return whole ? withWhole(ep, whole) : ep;
  }

  function render() {
    const episodes = groupEpisodes(h.alerts);
    const focused = document.activeElement;
    const hadFocus = focused === more;
    const newestHadFocus = focused === newest;
    const keptFirst = focused?.closest?.('#history-list li')?.dataset.first ?? null;
    const keptAction = focused?.dataset?.action;
    const top = h.top === null ? null : new Date(h.top).toISOString();
    list.replaceChildren(
      ...episodes.map((ep, i) => {
        // the oldest episode read may have begun before the oldest alert read
        ep.partial = i === episodes.length - 1 && h.next !== null;
        // the newest, when less than an episode's gap below the top of the list shown, may go on after it
        ep.continuesAfter = i === 0 && top !== null && h.top - Date.parse(ep.last.ts) <= EPISODE_GAP_MS ? top : null;
        return episodeItem(ep.partial || ep.continuesAfter ? complete(ep) : ep, labelWhole, onWithdraw);
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
    if (keptFirst !== null) itemButton(list.children[kept], keptAction)?.focus();
    else if (hadFocus && more.hidden) list.querySelector('li:last-child button')?.focus();
    else if (newestHadFocus && newest.hidden) when.focus();
    if (loading) return setNote('Loading…');
    if (h.finding === h.generation) return setNote(FINDING_WHOLE);
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
      Object.assign(h, { alerts, top, next, loadedAt: new Date(gatewayNow()).toISOString(), wholes: new Map() });
    });
  }

  /** Reads the next page of older alerts. */
  function readOlder() {
    return run(async (generation) => {
      if (h.next === null) return;
      const res = await readPages(h.pumpId, {
        before: h.next,
        enough: () => true,
      });
      if (generation !== h.generation) return;
      const seen = new Set(h.alerts.map((a) => a.seq));
      h.alerts.push(...res.alerts.filter((a) => !seen.has(a.seq)));
      h.next = res.next;
      h.wholes = new Map();
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
    Object.assign(h, { alerts: [], top: null, next: null, loadedAt: null, failed: null, problem: null, wholes: new Map() });
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
