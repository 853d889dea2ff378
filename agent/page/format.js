// Small formatters: times in the technician's local time, durations, sizes, numbers. "Now" is the
// gateway's clock (clock.js): the times shown are the gateway's, the phone's clock may be off.
import { gatewayNow } from './clock.js';

const sameDay = (a, b) => a.toDateString() === b.toDateString();
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const short = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dated = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
const datedYear = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });

/** A time of today with seconds, an earlier day's with its date, another year's with the year too. */
export function fmtTime(iso, now = new Date(gatewayNow())) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  if (sameDay(d, now)) return clock.format(d);
  return d.getFullYear() === now.getFullYear() ? dated.format(d) : datedYear.format(d);
}

/** "as of" times: hours and minutes only (with the date when not today). */
export function fmtClock(iso, now = new Date(gatewayNow())) {
  if (!iso) return '–';
  const d = new Date(iso);
  return sameDay(d, now) ? short.format(d) : fmtTime(iso, now);
}

/**
 * Old names of zones that browsers still report (Chromium calls Asia/Kolkata "Asia/Calcutta"),
 * by the names a technician there knows, as the IANA database names them now.
 */
const ZONE_ALIASES = {
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Dacca': 'Asia/Dhaka',
  'Asia/Ulan_Bator': 'Asia/Ulaanbaatar',
  'Europe/Kiev': 'Europe/Kyiv',
  'America/Godthab': 'America/Nuuk',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Pacific/Truk': 'Pacific/Chuuk',
  'Pacific/Ponape': 'Pacific/Pohnpei',
};

function offsetText(date) {
  const min = -date.getTimezoneOffset();
  const sign = min < 0 ? '−' : '+';
  const abs = Math.abs(min);
  return min === 0 ? 'UTC' : `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** The browser's time zone by its current name ("Asia/Kolkata"), or '' for UTC or none. */
function zoneName() {
  let zone = '';
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone ?? '';
  } catch {
    // no zone name: the offset says enough
  }
  if (zone === 'UTC' || zone === 'Etc/UTC') return '';
  return (ZONE_ALIASES[zone] ?? zone).replace(/_/g, ' ');
}

/** The zone the page's times are in, for a sentence: "America/Chicago", or "UTC−06:00" without a name. */
export function zoneWords(date = new Date()) {
  return zoneName() || offsetText(date);
}

/** The browser's time zone, said once in the header: "Times in Europe/Paris (UTC+01:00)". */
export function timeZoneText(date = new Date()) {
  const zone = zoneName();
  return zone ? `Times in ${zone} (${offsetText(date)})` : `Times in ${offsetText(date)}`;
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** How long ago a gateway time was, on the gateway's clock. */
export function fmtAgo(iso, now = gatewayNow()) {
  if (!iso) return '';
  return `${fmtDuration((now - Date.parse(iso)) / 1000)} ago`;
}

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(v, digits = 3) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(digits)).toString();
}

/**
 * A score and its model's threshold as text, with as many significant digits (3 to 9) as it takes
 * for the texts to compare as the numbers do: with 3, a normal 3.226 and an anomalous 3.228 both
 * read "3.23" beside "threshold 3.23".
 */
export function fmtScorePair(score, threshold) {
  const finite = (v) => typeof v === 'number' && Number.isFinite(v);
  if (!finite(score) || !finite(threshold)) return [fmtNum(score), fmtNum(threshold)];
  const at = (v, d) => String(Number(v.toPrecision(d)));
  // fmtNum first (it shows 1000 and more as whole numbers), then more significant digits.
  for (let d = 3; d <= 9; d++) {
    const texts = d === 3 ? [fmtNum(score), fmtNum(threshold)] : [at(score, d), at(threshold, d)];
    if (Math.sign(Number(texts[0]) - Number(texts[1])) === Math.sign(score - threshold) || d === 9) return texts;
  }
}

export function fmtPercent(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${Math.round(v)} %` : '–';
}

/** Each feature's share of the score, largest first: [[name, percent], …]. */
export function shares(contributions) {
  if (!contributions) return [];
  const entries = Object.entries(contributions);
  const total = entries.reduce((s, [, c]) => s + Math.abs(c), 0);
  if (!(total > 0)) return [];
  return entries.map(([n, c]) => [n, (Math.abs(c) / total) * 100]).sort((a, b) => b[1] - a[1]);
}

export const STATE_TEXT = {
  normal: 'Normal',
  anomaly: 'Anomaly',
  'no-model': 'No model',
  'not-scored': 'Not scored',
  stopped: 'Stopped',
  stale: 'Stale data',
  refused: 'Readings refused',
};

export const KIND_TEXT = {
  'confirmed-fault': 'Confirmed fault',
  'false-alarm': 'False alarm',
  maintenance: 'Maintenance',
};

/** A label's verdict as the dialogs' announcements say it: "Confirmed fault (bearing)", "False alarm". */
export const verdictText = (label) => (label.kind === 'confirmed-fault' ? `${KIND_TEXT[label.kind]} (${label.faultType})` : KIND_TEXT[label.kind]);
