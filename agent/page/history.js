// The selected pump's alert history: every alert of it the gateway keeps, newest first, a page at a
// time (GET /alerts?pumpId=&limit=&before=, the agent's keyset paging, so a page deep in the history
// costs what the first does), grouped into episodes as the recent list is, each one labellable. The
// recent list shows the newest 15 episodes; this is how a technician reads last week's.
//
// Not live: it is read when opened, for another pump, on "Reload", after the agent restarts or
// comes back after a failed read, and after a label is saved (down to the oldest alert read before,
// however many alerts came meanwhile, so the labelled episode stays on screen with its label).
import { api } from './api.js';
import { episodeItem, groupEpisodes } from './alerts.js';
import { gatewayNow } from './clock.js';
import { fmtClock, fmtTime } from './format.js';

/** Alerts asked for per page: about 100 kB of JSON, quick on a phone over the site's Wi-Fi. */
export const HISTORY_PAGE = 200;
/**
 * At most this many pages are read for one action: to close an episode before labelling it, or to
 * get back down to the oldest alert read before a re-read (10 000 alerts: nearly three hours of a
 * pump alerting every second).
 */
export const MAX_PAGES_PER_READ = 50;

const alertsPage = (pumpId, before) =>
  api(`/alerts?pumpId=${encodeURIComponent(pumpId)}&limit=${HISTORY_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`);

/** The list's order: newest reading time first, ties by the later committed first (as the agent answers). */
const newerThan = (a, b) => {
  const ta = Date.parse(a.ts);
  const tb = Date.parse(b.ts);
  return ta > tb || (ta === tb && a.seq > b.seq);
};

/** Whether the episode holding the alert `seq` is still the oldest in `alerts` (no older alert an episode's gap below it). */
const stillOldest = (alerts, seq) => groupEpisodes(alerts).at(-1).alerts.some((a) => a.seq === seq);

/**
 * The whole of an episode whose older alerts were not read (`partial`): its pump's alerts read back
 * from its oldest one until an older alert is more than an episode's gap below it, or none is left
 * (at most MAX_PAGES_PER_READ pages). Throws the ApiError of a failed read.
 */
export async function wholeEpisode(ep) {
  const alerts = [...ep.alerts];
  let next = `${Date.parse(ep.first.ts)}:${ep.first.seq}`;
  for (let pages = 0; next !== null && pages < MAX_PAGES_PER_READ && stillOldest(alerts, ep.first.seq); pages++) {
    const res = await alertsPage(ep.pumpId, next);
    alerts.push(...res.alerts);
    next = res.next;
  }
  return groupEpisodes(alerts).find((e) => e.alerts.some((a) => a.seq === ep.first.seq)) ?? ep;
}

/**
 * parts: the <details> and its elements (summary, note, list, more, reload); onLabel(episode) opens
 * the label dialog; onFailure(err) is the page's own handling of a failed request (sign-in, agent down).
 */
export function initHistory({ details, summary, note, list, more, reload, onLabel, onFailure }) {
  const h = {
    pumpId: null,
    /** The alerts read so far, newest first, and the cursor of the next page (null: all are read). */
    alerts: [],
    next: null,
    loadedAt: null,
    /** The last read failed (what it said): read again when the agent answers again. */
    failed: null,
    /** A read is running (one at a time: `queue` chains them). */
    busy: false,
    queue: Promise.resolve(),
    /** Bumped for another pump or a restarted agent: an answer read for the old one is dropped. */
    generation: 0,
  };

  function setNote(text) {
    if (note.textContent !== text) note.textContent = text;
  }

  /** Labels an episode, reading older pages first when it may have begun before the oldest alert read. */
  async function labelWhole(ep) {
    if (ep.partial) {
      // until an older alert more than an episode's gap below it is read, or the history ends
      await readOlder((alerts, next) => next === null || !stillOldest(alerts, ep.first.seq));
      if (h.failed !== null) return undefined; // the note says why; the label would cover part of it
      const whole = groupEpisodes(h.alerts).find((e) => e.alerts.some((a) => a.seq === ep.first.seq));
      if (whole) return onLabel(whole);
    }
    return onLabel(ep);
  }

  function render() {
    const episodes = groupEpisodes(h.alerts);
    const focused = document.activeElement;
    const hadFocus = focused === more;
    const keptFirst = focused?.closest?.('#history-list li')?.dataset.first ?? null;
    list.replaceChildren(
      ...episodes.map((ep, i) => {
        // the oldest episode read may have begun before the oldest alert read
        ep.partial = i === episodes.length - 1 && h.next !== null;
        return episodeItem(ep, labelWhole);
      }),
    );
    // The controls stay where they are while a read runs (aria-disabled, clicks ignored): a button
    // hidden or disabled under the keyboard's focus drops the focus to the page's body.
    const loading = h.busy;
    more.hidden = h.next === null && !(loading && hadFocus);
    for (const b of [more, reload]) b.setAttribute('aria-disabled', String(loading));
    if (keptFirst !== null) list.querySelector(`li[data-first="${keptFirst}"] button`)?.focus();
    else if (hadFocus && more.hidden) list.querySelector('li:last-child button')?.focus();
    if (loading) return setNote('Loading…');
    if (h.failed !== null) return setNote(h.failed);
    if (h.loadedAt === null) return setNote('');
    const loaded = ` Loaded at ${fmtClock(h.loadedAt)}; not live.`;
    if (h.alerts.length === 0) return setNote(`No alerts of this pump in the gateway’s buffer.${loaded}`);
    const n = h.alerts.length;
    const m = episodes.length;
    const extent = h.next === null ? 'all the gateway keeps of this pump' : 'older ones not read yet';
    setNote(`${n} alert${n === 1 ? '' : 's'} in ${m} episode${m === 1 ? '' : 's'}, ${fmtTime(h.alerts.at(-1).ts)} to ${fmtTime(h.alerts[0].ts)}, newest first: ${extent}.${loaded}`);
  }

  /** Runs one read at a time, in order; `work` gets the generation it belongs to. */
  function run(work) {
    const generation = h.generation;
    const task = h.queue.then(async () => {
      if (generation !== h.generation) return;
      h.busy = true;
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
   * Reads from the newest down to what `until()` gives (an alert read before: at least down to
   * it), else one page; fewer when the history ends first, at most MAX_PAGES_PER_READ.
   */
  function load(until = () => null) {
    return run(async (generation) => {
      const target = until(); // when the read starts: after the reads queued before it
      const alerts = [];
      let next = null;
      let pages = 0;
      do {
        const res = await alertsPage(h.pumpId, next);
        if (generation !== h.generation) return;
        alerts.push(...res.alerts);
        next = res.next;
        pages += 1;
      } while (next !== null && pages < MAX_PAGES_PER_READ && target !== null && newerThan(alerts.at(-1), target));
      Object.assign(h, { alerts, next, loadedAt: new Date(gatewayNow()).toISOString() });
    });
  }

  /** Reads older pages: one, or until `enough(alerts, next)` (at most MAX_PAGES_PER_READ). */
  function readOlder(enough = () => true) {
    return run(async (generation) => {
      let pages = 0;
      while (h.next !== null && pages < MAX_PAGES_PER_READ) {
        const res = await alertsPage(h.pumpId, h.next);
        if (generation !== h.generation) return;
        const seen = new Set(h.alerts.map((a) => a.seq));
        h.alerts.push(...res.alerts.filter((a) => !seen.has(a.seq)));
        h.next = res.next;
        pages += 1;
        if (enough(h.alerts, h.next)) break;
      }
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

  /** Forgets what was read (another pump, another buffer); an answer on its way is dropped. */
  function forget() {
    Object.assign(h, { alerts: [], next: null, loadedAt: null, failed: null });
    h.generation += 1;
    render();
  }

  return {
    /** The selected pump: another one starts from its newest alerts (read now when the history is open). */
    select(pumpId) {
      if (pumpId === h.pumpId) return;
      h.pumpId = pumpId;
      summary.textContent = `Alert history of ${pumpId}`;
      forget();
      if (details.open) void load();
    },
    /**
     * Read again, when open (else afresh when opened): after a label is saved, down to the oldest
     * alert read; after the agent restarted (`restarted`: its buffer may be another one, whose
     * alerts share sequence numbers with the old), from scratch.
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
