// Recent alerts, grouped into episodes: consecutive anomalies of one pump (at most a minute apart)
// are one event for the technician, labelled once with the episode's time range.
import { KIND_TEXT, fmtScorePair, fmtTime } from './format.js';
import { el, topShares } from './render.js';

export const EPISODE_GAP_MS = 60_000;
export const MAX_EPISODES = 15;

/**
 * The episodes the list shows, newest first: the newest of every pump, then the newest of the rest
 * up to MAX_EPISODES (more when more pumps have alerts): a pump raising and clearing alerts over and
 * over cannot push another pump's episode out of the list.
 */
function shown(episodes) {
  const pumps = new Set();
  const keep = new Set();
  for (const ep of episodes) {
    if (pumps.has(ep.pumpId)) continue;
    pumps.add(ep.pumpId);
    keep.add(ep);
  }
  for (const ep of episodes) {
    if (keep.size >= MAX_EPISODES) break;
    keep.add(ep);
  }
  return episodes.filter((ep) => keep.has(ep));
}

/**
 * alerts: newest first (GET /alerts) → all their episodes, newest first, each with its alerts newest
 * first and its label (the newest of its alerts' labels).
 */
export function groupEpisodes(alerts) {
  const open = new Map();
  const episodes = [];
  for (const a of alerts) {
    const ts = Date.parse(a.ts);
    let ep = open.get(a.pumpId);
    if (!ep || Date.parse(ep.first.ts) - ts > EPISODE_GAP_MS) {
      ep = { pumpId: a.pumpId, first: a, last: a, peak: a, alerts: [] };
      open.set(a.pumpId, ep);
      episodes.push(ep);
    }
    ep.alerts.push(a);
    ep.first = a;
    if ((a.score ?? -Infinity) > (ep.peak.score ?? -Infinity)) ep.peak = a;
  }
  for (const ep of episodes) ep.label = newestLabel(ep.alerts.map((a) => a.label));
  return episodes;
}

/** The newest (by `createdAt`) of some labels, nulls among them; null when none. */
const newestLabel = (labels) => labels.filter(Boolean).sort((x, y) => y.createdAt.localeCompare(x.createdAt))[0] ?? null;

/**
 * The item of an episode in `list` drawn again since: the one of the first alert it was shown with
 * (`first`, a seq as text), else an item of its pump within its time range (`from`, `to`: ISO; a
 * list that shows a long episode's newest alerts moves its first one shown as alerts arrive).
 */
export function episodeItemIn(list, { pump, first, from, to }) {
  const items = [...list.children];
  return (
    items.find((x) => x.dataset.pump === pump && x.dataset.first === first) ??
    items.find((x) => x.dataset.pump === pump && x.dataset.from <= to && x.dataset.to >= from) ??
    null
  );
}

/**
 * What a label misses of an episode, said by time, or null when it covers all of it. `extent`
 * ({ first, last }: ISO times): the whole episode as the agent bounds it, when known, else the
 * part listed. Counts of the alerts listed misled: a label saved while the pump was still in alarm
 * covers the episode up to then, and the list, holding only its newest alerts, said "covers 99 of
 * the episode's 100 readings" of a label over 123 of 150.
 */
export function labelCoverage(label, extent) {
  const from = Date.parse(label.from);
  const to = Date.parse(label.to);
  const first = Date.parse(extent.first);
  const last = Date.parse(extent.last);
  if (from <= first && to >= last) return null;
  if (from <= first) {
    // saved while the pump was still in alarm, most often (or over part of it, through the API)
    return `This label covers the episode up to ${fmtTime(label.to)} only: its later alerts are not labelled. Change the label to cover them too.`;
  }
  return `This label covers ${fmtTime(label.from)} – ${fmtTime(label.to)}, not all of the episode: change it to cover all of it.`;
}

/** The episodes the recent list shows (see `shown`). */
export const groupAlerts = (alerts) => shown(groupEpisodes(alerts));

function labelText(label) {
  const what = label.kind === 'confirmed-fault' ? `${KIND_TEXT[label.kind]}: ${label.faultType}` : KIND_TEXT[label.kind];
  return `${what}, by ${label.author} at ${fmtTime(label.createdAt)}${label.note ? ` — “${label.note}”` : ''}`;
}

/** The episode's time as its item says it: "14:02:10", or "14:02:10 – 14:03:00 (51 readings)". */
export function episodeWhen(ep) {
  const n = ep.alerts.length;
  return n === 1 ? fmtTime(ep.first.ts) : `${fmtTime(ep.first.ts)} – ${fmtTime(ep.last.ts)} (${n} readings)`;
}

/**
 * An item's button for `action` (`label`, `withdraw`), else its first: a list drawn again gives the
 * focus back to the button that had it, where a withdrawn label's button may be gone.
 */
export const itemButton = (li, action) => li?.querySelector(`button[data-action="${action}"]`) ?? li?.querySelector('button') ?? null;

/** The action of the focused button in an item of `list` ({ action, ...the item's dataset }), else null. */
function focusedItem(list) {
  const b = document.activeElement;
  const li = b?.closest?.('li');
  return li && list.contains(li) ? { ...li.dataset, action: b.dataset?.action } : null;
}

/**
 * One episode's list item; onLabel(episode) opens the label dialog for it, onWithdraw(episode) the
 * withdraw dialog for its label (the button only when it has one). `ep.partial`: it may have
 * begun before the oldest alert read; `ep.continuesAfter` (ISO): it may go on after that time, the
 * top of a history read from a chosen time. The item says so. `ep.whole` ({ first, last }: ISO),
 * when the agent said where such an episode begins and ends: the item says that instead.
 */
export function episodeItem(ep, onLabel, onWithdraw) {
  const li = el('li', `alert${ep.label ? ' labelled' : ''}`);
  li.dataset.seq = String(ep.peak.seq);
  li.dataset.first = String(ep.first.seq); // stable while the episode grows: the label dialog finds its button again by it
  // where a list shows only an episode's newest alerts (the recent list), by its time range instead
  li.dataset.from = ep.first.ts;
  li.dataset.to = ep.last.ts;
  li.dataset.pump = ep.pumpId;
  const head = el('div', 'alert-head');
  head.append(el('strong', '', ep.pumpId), el('span', '', episodeWhen(ep)));
  const [peak, threshold] = fmtScorePair(ep.peak.score, ep.peak.threshold);
  li.append(head, el('p', '', `Peak score ${peak} (threshold ${threshold})`));
  const top = topShares(ep.peak.contributions);
  if (top) li.append(el('p', '', `Main contributors: ${top}`));
  li.append(el('p', 'muted', `Model ${ep.peak.modelVersion ?? '–'}`));
  if (ep.label) li.append(el('p', 'label-text', labelText(ep.label)));
  const part = ep.label ? labelCoverage(ep.label, ep.whole ?? { first: ep.first.ts, last: ep.last.ts }) : null;
  if (part) li.append(el('p', 'label-part', part));
  if (ep.partial) {
    li.dataset.partial = 'true';
    li.append(el('p', 'muted', ep.whole ? wholeText(ep.whole) : PARTIAL_TEXT));
  }
  // once the agent said where it ends (`ep.whole`), only when it does go on after that time
  if (ep.continuesAfter && !(ep.whole && Date.parse(ep.whole.last) <= Date.parse(ep.last.ts))) {
    li.dataset.continues = 'true';
    const text = ep.whole
      ? `It goes on after ${fmtTime(ep.continuesAfter)}: its newest alert is at ${fmtTime(ep.whole.last)}, and a label covers all of it.`
      : `It may go on after ${fmtTime(ep.continuesAfter)}: a label covers all of it, its newer alerts too.`;
    li.append(el('p', 'muted', text));
  }
  const b = el('button', ep.label ? 'secondary' : '', ep.label ? 'Change label' : 'Label this alert');
  b.type = 'button';
  b.setAttribute('aria-label', `${ep.label ? 'Change label of' : 'Label'} alert of ${ep.pumpId} at ${fmtTime(ep.first.ts)}`);
  b.dataset.action = 'label';
  b.addEventListener('click', () => onLabel(ep));
  li.append(b);
  if (ep.label && onWithdraw) {
    const w = el('button', 'secondary', 'Withdraw label');
    w.type = 'button';
    w.dataset.action = 'withdraw';
    w.setAttribute('aria-label', `Withdraw label of alert of ${ep.pumpId} at ${fmtTime(ep.first.ts)}`);
    w.addEventListener('click', () => onWithdraw(ep));
    li.append(w);
  }
  return li;
}

/** Text on an episode that may have begun before the oldest alert read. */
const PARTIAL_TEXT = 'It may have begun earlier: a label covers all of it, its older alerts too.';

/** Text on such an episode once the agent said where it began (`whole`: from the answer of GET /alerts/:seq/episode). */
const wholeText = (whole) => `Only its newest alerts are listed: it began at ${fmtTime(whole.first)}, and a label covers all of it.`;

/**
 * The recent alerts of every pump (at most `perPump` of each); onLabel(episode) opens the label
 * dialog for it, onWithdraw(episode) the withdraw dialog. A pump's oldest episode is marked `partial` when its alerts fill its `perPump`:
 * it may have begun before them (a pump in anomaly for more than `perPump` readings). Returns the
 * episodes shown.
 */
export function renderAlerts(list, empty, alerts, perPump, onLabel, onWithdraw) {
  const counts = new Map();
  for (const a of alerts) counts.set(a.pumpId, (counts.get(a.pumpId) ?? 0) + 1);
  const all = groupEpisodes(alerts);
  const oldest = new Map();
  for (const ep of all) oldest.set(ep.pumpId, ep.first.seq);
  const episodes = shown(all);
  for (const ep of episodes) ep.partial = counts.get(ep.pumpId) >= perPump && oldest.get(ep.pumpId) === ep.first.seq;
  empty.hidden = episodes.length > 0;
  // The list is drawn again at every poll: the button that had the keyboard's focus gets it back
  // (the same episode's, found as the label dialog finds it), where it was lost to the page's body.
  const focused = focusedItem(list);
  list.replaceChildren(...episodes.map((ep) => episodeItem(ep, onLabel, onWithdraw)));
  list.dataset.drawing = String(Number(list.dataset.drawing ?? 0) + 1);
  if (focused) itemButton(episodeItemIn(list, focused), focused.action)?.focus({ preventScroll: true });
  return episodes;
}

/**
 * `ep` (an episode a list cut) with what the agent says of the whole of it (`whole`, GET
 * /alerts/:seq/episode): the newer of the two labels (the answer may be older than the list
 * drawn), and its extent (`whole`: ISO first and last; the last never before the alerts listed, as
 * the episode may have gone on since the answer).
 */
export function withWhole(ep, whole) {
  const last = Date.parse(whole.last.ts) >= Date.parse(ep.last.ts) ? whole.last.ts : ep.last.ts;
  return { ...ep, label: newestLabel([whole.label, ep.label]), whole: { first: whole.first.ts, last } };
}

/**
 * Draws again the item of an episode the list cut (`ep.partial`) with what the agent says of the
 * whole of it (`whole`, GET /alerts/:seq/episode): its label, which may be on alerts not listed (a
 * label saved while the pump was in alarm covers it up to then, and none of its newest alerts carry
 * it: the item said "Label this alert" again and the dialog came up empty) and where it began.
 * The caller checks that the answer is for this drawing of the list (`list.dataset.drawing`); the
 * focus stays on its button.
 */
export function completeCut(list, ep, whole, onLabel, onWithdraw) {
  const li = [...list.children].find((x) => x.dataset.pump === ep.pumpId && x.dataset.first === String(ep.first.seq));
  if (!li) return;
  const focused = li.contains(document.activeElement) ? (document.activeElement.dataset?.action ?? 'label') : null;
  const next = episodeItem(withWhole(ep, whole), onLabel, onWithdraw);
  li.replaceWith(next);
  if (focused) itemButton(next, focused)?.focus({ preventScroll: true });
}
