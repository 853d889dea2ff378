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
  for (const ep of episodes) {
    ep.label = ep.alerts.map((a) => a.label).filter(Boolean).sort((x, y) => y.createdAt.localeCompare(x.createdAt))[0] ?? null;
    // a label saved on part of the episode (it went on after, or only its newest alerts were read)
    ep.labelled = ep.label ? ep.alerts.filter((a) => a.label?.id === ep.label.id).length : 0;
  }
  return episodes;
}

/** The episodes the recent list shows (see `shown`). */
export const groupAlerts = (alerts) => shown(groupEpisodes(alerts));

function labelText(label) {
  const what = label.kind === 'confirmed-fault' ? `${KIND_TEXT[label.kind]}: ${label.faultType}` : KIND_TEXT[label.kind];
  return `${what}, by ${label.author} at ${fmtTime(label.createdAt)}${label.note ? ` — “${label.note}”` : ''}`;
}

function when(ep) {
  const n = ep.alerts.length;
  return n === 1 ? fmtTime(ep.first.ts) : `${fmtTime(ep.first.ts)} – ${fmtTime(ep.last.ts)} (${n} readings)`;
}

/**
 * One episode's list item; onLabel(episode) opens the label dialog for it. `ep.partial`: it may have
 * begun before the oldest alert read; `ep.continuesAfter` (ISO): it may go on after that time, the
 * top of a history read from a chosen time. The item says so.
 */
export function episodeItem(ep, onLabel) {
  const li = el('li', `alert${ep.label ? ' labelled' : ''}`);
  li.dataset.seq = String(ep.peak.seq);
  li.dataset.first = String(ep.first.seq); // stable while the episode grows: the label dialog finds its button again by it
  // where a list shows only an episode's newest alerts (the recent list), by its time range instead
  li.dataset.from = ep.first.ts;
  li.dataset.to = ep.last.ts;
  li.dataset.pump = ep.pumpId;
  const head = el('div', 'alert-head');
  head.append(el('strong', '', ep.pumpId), el('span', '', when(ep)));
  const [peak, threshold] = fmtScorePair(ep.peak.score, ep.peak.threshold);
  li.append(head, el('p', '', `Peak score ${peak} (threshold ${threshold})`));
  const top = topShares(ep.peak.contributions);
  if (top) li.append(el('p', '', `Main contributors: ${top}`));
  li.append(el('p', 'muted', `Model ${ep.peak.modelVersion ?? '–'}`));
  if (ep.label) li.append(el('p', 'label-text', labelText(ep.label)));
  if (ep.label && ep.labelled < ep.alerts.length) {
    li.append(el('p', 'label-part', `This label covers ${ep.labelled} of the episode’s ${ep.alerts.length} readings: change it to cover all of them.`));
  }
  if (ep.partial) {
    li.dataset.partial = 'true';
    li.append(el('p', 'muted', PARTIAL_TEXT));
  }
  if (ep.continuesAfter) {
    li.dataset.continues = 'true';
    li.append(el('p', 'muted', `It may go on after ${fmtTime(ep.continuesAfter)}: a label covers all of it, its newer alerts too.`));
  }
  const b = el('button', ep.label ? 'secondary' : '', ep.label ? 'Change label' : 'Label this alert');
  b.type = 'button';
  b.setAttribute('aria-label', `${ep.label ? 'Change label of' : 'Label'} alert of ${ep.pumpId} at ${fmtTime(ep.first.ts)}`);
  b.addEventListener('click', () => onLabel(ep));
  li.append(b);
  return li;
}

/** Text on an episode that may have begun before the oldest alert read. */
const PARTIAL_TEXT = 'It may have begun earlier: a label covers all of it, its older alerts too.';

/**
 * The recent alerts of every pump (at most `perPump` of each); onLabel(episode) opens the label
 * dialog for it. A pump's oldest episode is marked `partial` when its alerts fill its `perPump`:
 * it may have begun before them (a pump in anomaly for more than `perPump` readings).
 */
export function renderAlerts(list, empty, alerts, perPump, onLabel) {
  const counts = new Map();
  for (const a of alerts) counts.set(a.pumpId, (counts.get(a.pumpId) ?? 0) + 1);
  const all = groupEpisodes(alerts);
  const oldest = new Map();
  for (const ep of all) oldest.set(ep.pumpId, ep.first.seq);
  const episodes = shown(all);
  for (const ep of episodes) ep.partial = counts.get(ep.pumpId) >= perPump && oldest.get(ep.pumpId) === ep.first.seq;
  empty.hidden = episodes.length > 0;
  list.replaceChildren(...episodes.map((ep) => episodeItem(ep, onLabel)));
}
