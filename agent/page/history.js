// The selected pump's alert history: every alert of it the gateway keeps, newest first, a page at a
// time (GET /alerts?pumpId=&limit=&before=, the agent's keyset paging, so a page deep in the history
// costs what the first does), grouped into episodes as the recent list is, each one labellable. The
// recent list shows the newest 15 episodes; this is how a technician reads last week's.
//
// Not live: it is loaded when opened, for another pump, on "Reload", and after a label is saved
// (to the depth already read, so the labelled episode stays on screen).
import { api } from './api.js';
import { episodeItem, groupEpisodes } from './alerts.js';
import { fmtClock, fmtTime } from './format.js';
import { el } from './render.js';

/** Alerts asked for per page: about 100 kB of JSON, quick on a phone over the site's Wi-Fi. */
export const HISTORY_PAGE = 200;

const alertsPage = (pumpId, before) =>
  api(`/alerts?pumpId=${encodeURIComponent(pumpId)}&limit=${HISTORY_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`);

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
    pages: 0,
    loadedAt: null,
    loading: false,
    /** Bumped by every new load: an answer for an older one (another pump) is dropped. */
    generation: 0,
  };

  function render() {
    const episodes = groupEpisodes(h.alerts);
    list.replaceChildren(
      ...episodes.map((ep, i) => {
        const li = episodeItem(ep, onLabel);
        // the oldest episode read may have begun before the page's first alert
        if (i === episodes.length - 1 && h.next !== null) {
          li.dataset.partial = 'true';
          li.insertBefore(el('p', 'muted', 'It may have begun earlier: show older alerts to see all of it.'), li.querySelector('button'));
        }
        return li;
      }),
    );
    more.hidden = h.next === null || h.loading;
    more.disabled = reload.disabled = h.loading;
    if (h.loading) return setNote('Loading…');
    if (h.loadedAt === null) return setNote('');
    const loaded = ` Loaded at ${fmtClock(h.loadedAt)}; not live.`;
    if (h.alerts.length === 0) return setNote(`No alerts of this pump in the gateway’s buffer.${loaded}`);
    const newest = h.alerts[0].ts;
    const oldest = h.alerts.at(-1).ts;
    const n = h.alerts.length;
    const m = episodes.length;
    const extent = h.next === null ? 'all the gateway keeps of this pump' : 'older ones not read yet';
    setNote(`${n} alert${n === 1 ? '' : 's'} in ${m} episode${m === 1 ? '' : 's'}, ${fmtTime(oldest)} to ${fmtTime(newest)}, newest first: ${extent}.${loaded}`);
  }

  function setNote(text) {
    if (note.textContent !== text) note.textContent = text;
  }

  /** Reads `pages` pages from the newest (at least one; fewer when the history ends first). */
  async function load(pages) {
    const pumpId = h.pumpId;
    if (pumpId === null) return;
    const generation = ++h.generation;
    h.loading = true;
    render();
    const alerts = [];
    let next = null;
    let read = 0;
    try {
      do {
        const res = await alertsPage(pumpId, next);
        if (generation !== h.generation) return;
        alerts.push(...res.alerts);
        next = res.next;
        read += 1;
      } while (next !== null && read < pages);
    } catch (err) {
      if (generation !== h.generation) return;
      h.loading = false;
      render();
      setNote(`The alert history could not be read: ${err?.message ?? err}`);
      onFailure(err);
      return;
    }
    Object.assign(h, { alerts, next, pages: read, loadedAt: new Date().toISOString(), loading: false });
    render();
  }

  async function older() {
    if (h.next === null || h.loading) return;
    const { pumpId, next } = h;
    const generation = ++h.generation;
    h.loading = true;
    render();
    try {
      const res = await alertsPage(pumpId, next);
      if (generation !== h.generation) return;
      const seen = new Set(h.alerts.map((a) => a.seq));
      h.alerts.push(...res.alerts.filter((a) => !seen.has(a.seq)));
      Object.assign(h, { next: res.next, pages: h.pages + 1, loading: false });
      render();
    } catch (err) {
      if (generation !== h.generation) return;
      h.loading = false;
      render();
      setNote(`Older alerts could not be read: ${err?.message ?? err}`);
      onFailure(err);
    }
  }

  details.addEventListener('toggle', () => {
    if (details.open && h.loadedAt === null && !h.loading) void load(1);
  });
  more.addEventListener('click', () => void older());
  reload.addEventListener('click', () => void load(Math.max(1, h.pages)));

  return {
    /** The selected pump: another one starts from its newest alerts (read now when the history is open). */
    select(pumpId) {
      if (pumpId === h.pumpId) return;
      Object.assign(h, { pumpId, alerts: [], next: null, pages: 0, loadedAt: null, loading: false });
      h.generation += 1;
      summary.textContent = `Alert history of ${pumpId}`;
      render();
      if (details.open) void load(1);
    },
    /** Read again to the depth already read (a label was saved, the agent restarted), when open. */
    refresh() {
      if (details.open && h.loadedAt !== null) return load(Math.max(1, h.pages));
      h.loadedAt = null; // read afresh when opened
      return undefined;
    },
  };
}
