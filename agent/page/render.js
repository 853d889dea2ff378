// Rendering the pumps, alerts and gateway facts. Text goes in with textContent only.
import { gatewayNow } from './clock.js';
import { STATE_TEXT, fmtAgo, fmtBytes, fmtClock, fmtDuration, fmtNum, fmtPercent, fmtScorePair, fmtTime, shares } from './format.js';

const ORDER = { anomaly: 0, refused: 1, stale: 1, 'not-scored': 2, 'no-model': 3, normal: 4, stopped: 5 };

/**
 * A pump that went silent, or whose readings are all refused, while in anomaly: neither clears an
 * alarm.
 */
const silentAlarm = (p) => (p.state === 'stale' || p.state === 'refused') && p.lastState === 'anomaly';
/** A pump in anomaly, or one that went silent while in anomaly. */
export const alarming = (p) => p.state === 'anomaly' || silentAlarm(p);
/** Live alarms first, then silent ones still alarming, then the rest by state. */
const rank = (p) => (silentAlarm(p) ? 0.5 : (ORDER[p.state] ?? 9));

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function badge(state) {
  return el('span', `badge s-${state}`, STATE_TEXT[state] ?? state);
}

function pumpBadge(p) {
  if (!silentAlarm(p)) return badge(p.state);
  return el('span', 'badge s-anomaly', p.state === 'refused' ? 'Anomaly · readings refused' : 'Anomaly · no data');
}

/**
 * The sensors contributing most, "Pressure 71 %, Current 24 %". A share under 1 % is no
 * contributor: listed, it read "Voltage 0 %" among the main ones.
 */
export function topShares(contributions, n = 3) {
  return shares(contributions)
    .filter(([, p]) => p >= 1)
    .slice(0, n)
    .map(([name, p]) => `${name} ${Math.round(p)} %`)
    .join(', ');
}

const capital = (t) => `${t.charAt(0).toUpperCase()}${t.slice(1)}`;

function anomalyText(p) {
  const top = topShares(p.lastAlert?.contributions);
  // a streak that began before the oldest reading the agent read back at start-up: a lower bound
  const since = p.anomalySinceAtLeast ? 'since at least' : 'since';
  return `Anomaly ${since} ${fmtTime(p.anomalySince)} (${fmtAgo(p.anomalySince)})${top ? `; main contributors: ${top}` : ''}`;
}

/** Why a pump is in its state, in one sentence. */
export function pumpWhy(p) {
  if (p.state === 'anomaly') return `${anomalyText(p)}.`;
  // A planned stop (its model's stopped-when rule): readings stored, not scored, no alarms.
  // a stop that began before the oldest reading the agent looked back over at start-up: a lower bound
  if (p.state === 'stopped') return `Stopped ${p.stoppedSinceAtLeast ? 'since at least' : 'since'} ${fmtTime(p.stoppedSince)} (${fmtAgo(p.stoppedSince)}): readings are stored, not scored, no alarms — ${p.detail}.`;
  if ((p.state === 'stale' || p.state === 'refused') && p.lastState) {
    const silent = capital(p.detail ?? 'no recent reading');
    return p.lastState === 'anomaly'
      ? `${silent} — last state: ${anomalyText(p)}.`
      : `${silent} — last state: ${STATE_TEXT[p.lastState] ?? p.lastState}.`;
  }
  if (p.state === 'not-scored' && p.lackedSensors) return lackedText(p);
  if (p.detail) return `${capital(p.detail)}.`;
  if (p.state === 'normal') return p.lastAlertAt ? `Normal; last alert ${fmtTime(p.lastAlertAt)}.` : 'Normal; no alert in recent readings.';
  return '';
}

/**
 * A pump not scored because its model needs sensors it has never sent (not a gap: its readings
 * name other sensors, as a site with its own tag names under the default model): which it lacks,
 * which it sends, and the way out.
 */
function lackedText(p) {
  const { lacks, sends, others } = p.lackedSensors;
  const which = isGeneric(p.model) ? 'the default model' : `model ${p.model?.version ?? ''}`.trim();
  const own = others.length > 0 ? ` Its readings name ${others.join(', ')}.` : '';
  const has = sends.length > 0 ? ` It sends ${sends.join(', ')}.` : ' It sends none of them.';
  const out = isGeneric(p.model)
    ? 'Deploy a model of its own, or fit one for the site (README "Commissioning a site whose sensors have their own names").'
    : 'Send those sensors under these names, or deploy a model trained on the sensors it sends.';
  return `Not scored: ${which} needs sensors this pump does not send: ${lacks.join(', ')}.${has}${own} ${out}`;
}

/**
 * A pump whose readings are taken, some of them refused lately: "Warning: 3 readings refused in the
 * last 5 min; last: …". Empty when none was (or when the state itself says they are refused).
 */
export function refusalNote(p) {
  const r = p.refused;
  if (!r || p.state === 'refused' || !(r.recent > 0)) return '';
  return `Warning: ${r.recent} reading${r.recent === 1 ? '' : 's'} refused in the last 5 min; last: ${r.lastReason}`;
}

/**
 * The pump's sensors found frozen (`sensorFaults` from the agent: a run of identical readings while
 * the pump runs, as long as its model says no working transmitter holds one): "Sensor frozen:
 * Current has read 2.17 for 75 readings since 14:02 (12 min ago) — check the transmitter and its
 * wiring; the pump is still scored, but not on a live value of it." One line per sensor; empty when none.
 */
export function sensorFaultNotes(p) {
  return (p.sensorFaults ?? []).map(
    (f) => `Sensor frozen: ${f.feature} has read ${fmtNum(f.value)} for ${f.readings} readings in a row since ${fmtTime(f.since)} (${fmtAgo(f.since)}) — check the transmitter and its wiring; the pump is still scored, but not on a live value of it.`,
  );
}

/**
 * A pump the generic default model flags nearly all the time (`outsideGenericRange` from the agent):
 * its readings are outside what that model knows, so its alarms say little, unless a fault has
 * lasted the whole span (the data cannot tell the two apart). Empty otherwise.
 */
export function rangeNote(p) {
  const r = p.outsideGenericRange;
  if (!r) return '';
  return `Outside the generic model's range: it flagged ${r.anomalies} of this pump's ${r.scored} readings in the last ${r.windowMinutes} min. Either this pump runs unlike the simulated pumps the generic default model was fitted on, and its alarms say nothing about faults, or a fault has lasted the whole time: check the pump; a model of its own tells the two apart.`;
}

/** The gateway's generic default model scores every pump that has no model of its own yet. */
export const isGeneric = (model) => model?.key === 'default';

/**
 * Whose model scores the pump: { badge, warning } (warning only for the generic default model,
 * which misses many faults of a pump it was not trained on); null without a model.
 */
export function modelScope(model) {
  if (!model) return null;
  if (isGeneric(model) && model.defaultFile) {
    return {
      generic: true,
      badge: `Gateway default model (${model.defaultFile}) — not trained on this pump alone`,
      warning: "The default model set on this gateway (PUMPWATCH_DEFAULT_MODEL) scores every pump without a model of its own: a model trained on this pump's readings tells its faults apart better.",
    };
  }
  if (isGeneric(model)) {
    return {
      generic: true,
      badge: 'Generic default model — not trained on this pump',
      warning: 'Many faults of this pump will not raise an alarm until a model trained on its own readings is deployed. The generic model was fitted on simulated pumps at six duty points: a pump running far from them (flow, current, temperatures) may be in alarm all the time until then.',
    };
  }
  return { generic: false, badge: 'Trained for this pump', warning: '' };
}

/**
 * The selected pump's model and how long a span of readings it was trained on. A span under a day
 * is said out loud: such a model has not seen the pump's daily cycle. Returns { text, short }.
 */
export function modelTraining(model, scored = true) {
  if (!model) return { text: '', short: false };
  const which = defaultName(model) ?? `model ${model.version}`;
  // a pump whose readings are not scored is not "scored by" its model (L4 of the commissioning review)
  if (!scored) return { text: `Not scored yet by ${which}${model.training ? `, trained on ${fmtDuration(model.training.spanMs / 1000)} of readings` : ''}.`, short: false };
  const t = model.training;
  if (!t) return { text: `Scored by ${which}; its training range is not recorded.`, short: false };
  const span = `${fmtDuration(t.spanMs / 1000)} of readings (${fmtTime(t.from)} to ${fmtTime(t.to)})`;
  if (!t.short) return { text: `Scored by ${which}, trained on ${span}.`, short: false };
  return {
    text: `Scored by ${which}, trained on only ${span}, less than a day: it has not seen this pump's daily cycle, so normal changes over the day may raise false alarms.`,
    short: true,
  };
}

/** The default model in words: the generic one bundled with the agent, or the one PUMPWATCH_DEFAULT_MODEL names; null for a pump's own. */
const defaultName = (model) => (!isGeneric(model) ? null : model.defaultFile ? `the gateway's default model ${model.version} (${model.defaultFile})` : `the generic default model ${model.version}`);

/** Whether the pump's readings are scored now (or were, for a stale pump or one whose readings are refused). */
export const isScored = (p) => ['normal', 'anomaly'].includes(p.state) || ['normal', 'anomaly'].includes(p.lastState);

const whoScores = (model) => (!model ? 'no model scores it yet' : isGeneric(model) ? (model.defaultFile ? `scored by the gateway's default model (${model.defaultFile})` : 'scored by the generic default model') : `still scored by model ${model.version}`);

/**
 * The model deployed for the pump itself when it does not score the pump (refused, downloading,
 * rolled back), and a shadow model, in words: { text, problem } or null. Without it a pump whose
 * own model was refused reads exactly as one never given a model.
 */
export function deploymentNote(p) {
  const d = p.deployment;
  const parts = [];
  let problem = false;
  if (d && !(d.status === 'active' && p.model?.key === p.pumpId && p.model.version === d.version)) {
    const own = `Own model ${d.version ?? '(no version)'}`;
    if (d.status === 'rejected') {
      parts.push(`${own} refused: ${d.error ?? 'no reason given'} — ${whoScores(p.model)}.`);
      problem = true;
    } else if (d.status === 'rolled-back') {
      parts.push(`${own} rolled back: ${d.error ?? 'no reason given'} — ${whoScores(p.model)}.`);
      problem = true;
    } else if (d.status === 'downloading') {
      parts.push(`${own} downloading since ${fmtTime(d.since)} (${fmtAgo(d.since)})${d.error ? `; last attempt: ${d.error}` : ''} — ${whoScores(p.model)} until it is ready.`);
    }
  }
  const sh = p.shadow;
  if (sh) {
    const name = `Shadow model ${sh.version ?? '(no version)'}`;
    if (sh.status === 'shadow') parts.push(`${name} scores beside it (its scores are stored, it raises no alarm).`);
    else if (sh.status === 'downloading') parts.push(`${name} downloading since ${fmtTime(sh.since)} (${fmtAgo(sh.since)}).`);
    else if (sh.status === 'rejected' || sh.status === 'rolled-back') {
      parts.push(`${name} refused: ${sh.error ?? 'no reason given'}.`);
      problem = true;
    }
  }
  return parts.length > 0 ? { text: parts.join(' '), problem } : null;
}

/**
 * The pump's first model fitted on the gateway (/status `firstModels`, README "A first model fitted
 * on the gateway"), in words: { text, problem } while waiting for its hours of running readings,
 * refused (a problem; the reason says the way out) or fitted. Null when first models are off
 * (`afterHours` 0), the pump has no entry, or it is retired (a model from the cloud took over: the
 * model lines say which scores it).
 */
export function firstModelNote(firstModels, pumpId) {
  if (!(firstModels?.afterHours > 0)) return null;
  const f = firstModels.pumps?.[pumpId];
  if (f?.state === 'waiting') {
    const expected = f.expectedAt ? `; expected about ${fmtClock(f.expectedAt)}` : '';
    return { text: `First model: waiting for ${fmtNum(f.neededHours)} h of running readings (${fmtNum(f.spanHours ?? 0)} h so far)${expected}`, problem: false };
  }
  if (f?.state === 'refused') return { text: `First model refused: ${f.reason ?? 'no reason given'}`, problem: true };
  if (f?.state === 'fitted') {
    const rows = typeof f.rows === 'number' ? f.rows.toLocaleString('en-US') : '–';
    return { text: `First model ${f.version} fitted on ${rows} readings at ${fmtTime(f.at)}`, problem: false };
  }
  return null;
}

export function sortPumps(pumps) {
  // numbers in ids by their value: sim-pump-3 before sim-pump-29 (not after sim-pump-29, as text)
  return [...pumps].sort((a, b) => rank(a) - rank(b) || a.pumpId.localeCompare(b.pumpId, 'en', { numeric: true }));
}

function modelLine(model, thresholdText) {
  if (!model) return 'No model';
  const which = isGeneric(model) ? `${model.defaultFile ? 'Gateway' : 'Generic'} default model (${model.version})` : `This pump's model ${model.version}`;
  return `${which} · threshold ${thresholdText}`;
}

function fillPump(button, p, selected) {
  button.className = `pump s-${p.state}${silentAlarm(p) ? ' silent-alarm' : ''}`;
  button.dataset.state = p.state;
  if (p.lastState) button.dataset.lastState = p.lastState;
  else delete button.dataset.lastState;
  button.dataset.model = isGeneric(p.model) ? 'generic' : p.model ? 'pump' : 'none';
  button.setAttribute('aria-pressed', String(selected));
  const last = p.lastReading;
  // Shown beside each other: as many digits as it takes for them to compare as the numbers do.
  const [scoreText, thresholdText] = fmtScorePair(last?.score, p.model?.threshold);
  const reading = last ? `Last reading ${fmtTime(last.ts)} · score ${scoreText}` : p.refused ? 'No reading accepted yet' : 'No readings yet';
  button.replaceChildren(
    el('span', 'pump-name', p.pumpId),
    pumpBadge(p),
    el('span', `pump-line${isGeneric(p.model) ? ' generic' : ''}`, modelLine(p.model, thresholdText)),
    el('span', 'pump-line', reading),
  );
  const why = pumpWhy(p);
  if (why && p.state !== 'normal') button.append(el('span', 'pump-line why', why));
  if (p.outsideGenericRange) button.dataset.outsideRange = 'true';
  else delete button.dataset.outsideRange;
  const range = rangeNote(p);
  if (range) button.append(el('span', 'pump-line range-note', range));
  const note = refusalNote(p);
  if (note) button.append(el('span', 'pump-line refused-note', note));
  const frozen = sensorFaultNotes(p);
  if (frozen.length > 0) button.dataset.sensorFault = 'frozen';
  else delete button.dataset.sensorFault;
  for (const text of frozen) button.append(el('span', 'pump-line sensor-note', text));
  const deployed = deploymentNote(p);
  if (deployed) button.append(el('span', `pump-line deploy-note${deployed.problem ? ' problem' : ''}`, deployed.text));
}

/** Updates the pump list in place (keyed by pump), so keyboard focus stays where it was. */
export function renderPumps(list, pumps, selectedId, onSelect) {
  const existing = new Map([...list.children].map((li) => [li.dataset.pump, li]));
  const sorted = sortPumps(pumps);
  const items = sorted.map((p) => {
    let li = existing.get(p.pumpId);
    if (!li) {
      li = el('li');
      li.dataset.pump = p.pumpId;
      const b = el('button');
      b.type = 'button';
      b.dataset.pump = p.pumpId;
      b.addEventListener('click', () => onSelect(p.pumpId));
      li.append(b);
    }
    existing.delete(p.pumpId);
    fillPump(li.firstChild, p, p.pumpId === selectedId);
    return li;
  });
  for (const li of existing.values()) li.remove();
  const same = items.length === list.children.length && items.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...items);
}

export function renderValues(tbody, row) {
  const share = new Map(shares(row?.contributions));
  tbody.replaceChildren(
    ...Object.entries(row?.values ?? {}).map(([name, v]) => {
      const tr = el('tr');
      tr.append(el('td', '', name), el('td', '', v === null ? 'no value' : fmtNum(v, 4)), el('td', '', share.has(name) ? `${Math.round(share.get(name))} %` : '–'));
      return tr;
    }),
  );
}

const count = (n, what) => `${n.toLocaleString('en-US')} ${what}${n === 1 ? '' : 's'}`;

/**
 * The buffer's line: its size against the cap in force, counted as the cap counts it (the database's
 * pages in use and the write-ahead log with its index, buffer/eviction.ts), which is the disk's
 * limit when the volume cannot hold the setting; and, in red, the readings evicted before they were
 * uploaded since start, which are lost (the cap keeps the buffer working, so nothing else says so).
 */
function bufferFact(b, sync) {
  if (b.error) return `unavailable: ${b.error}`;
  const used = typeof b.bytes === 'number' ? b.bytes + (b.walBytes ?? 0) : undefined;
  const disk = typeof b.diskLimitBytes === 'number';
  const size = `${fmtBytes(used)} of ${fmtBytes(disk ? b.diskLimitBytes : b.maxBytes)}${disk ? ` (the disk's free space is the limit; the setting is ${fmtBytes(b.maxBytes)})` : ''}`;
  const text = `${b.rows ?? '–'} readings, ${b.unsynced ?? '–'} not yet uploaded, ${size}`;
  const lost = lostBeforeUpload(b, sync);
  if (lost === null) return text;
  if (lost.sinceStart > 0) return [text, el('span', 'lost', ` · ${count(lost.sinceStart, 'reading')} evicted before they were uploaded since start, the last at ${fmtTime(lost.lastAt)}: lost`)];
  return [text, el('span', 'lost', ` · readings evicted before they were uploaded (before the agent's start), the last at ${fmtTime(lost.lastAt)}: lost`)];
}

/**
 * The buffer's `unsentEvicted` when the page tells of it, else null: while a sync runs (without
 * one nothing was to be uploaded, and evicting the oldest is the design; /healthz stays ok too),
 * with readings lost since start, or the last such eviction under 24 h ago, across a restart.
 */
function lostBeforeUpload(b, sync) {
  const lost = b.unsentEvicted;
  if (!lost || sync?.state === 'off' || sync?.state === 'not configured') return null;
  // as long as /healthz says so (24 h after the last), across a restart: then none since start
  const recent = lost.lastAt !== null && gatewayNow() - Date.parse(lost.lastAt) < LOST_SHOWN_MS;
  return lost.sinceStart > 0 || recent ? lost : null;
}

/** How long after the last unsent reading evicted the buffer's line says so: as /healthz (buffer/store.ts UNSENT_EVICTED_HEALTH_MS). */
const LOST_SHOWN_MS = 24 * 3_600_000;

/**
 * The sync's last success as /status has it: since the agent's start only, so none yet after a
 * restart is "no upload since the agent started at 14:02:11", not "never" (uploads may have
 * succeeded seconds before the restart).
 */
/**
 * `; next try at 14:05` from the sync's `nextAttemptAt`; `blocked`: also that a restart of the agent
 * tries at once (its slow pace is for causes a person must fix, who may have fixed it).
 */
function nextTryText(sync, blocked) {
  if (!sync.nextAttemptAt) return '';
  return `; next try at ${fmtTime(sync.nextAttemptAt)}${blocked ? ' (restarting the agent tries at once)' : ''}`;
}

function lastUploadText(s, ago) {
  const at = s.sync?.lastSuccessAt;
  if (at) return ago ? `last upload ${fmtAgo(at)}` : `last success ${fmtTime(at)}`;
  return s.startedAt ? `no upload since the agent started at ${fmtTime(s.startedAt)}` : 'no upload since the agent started';
}

/**
 * The sync's last error with its time, marked past once an upload succeeded after it: kept after
 * the link recovers, without a time it read as an outage going on.
 */
function lastErrorText(sync) {
  if (!sync.lastError) return '';
  const past = sync.lastErrorAt && sync.lastSuccessAt && Date.parse(sync.lastSuccessAt) > Date.parse(sync.lastErrorAt);
  return `; last error${sync.lastErrorAt ? ` ${fmtTime(sync.lastErrorAt)}` : ''}${past ? ' (past: uploads succeeded after it)' : ''}: ${sync.lastError}`;
}

function facts(s) {
  const b = s.buffer ?? {};
  const sync = s.sync ?? {};
  const sys = s.system ?? {};
  const temp = sys.temperature?.mainCelsius ?? sys.temperature?.maxCelsius;
  return [
    ['Device', s.device],
    ['Agent', `${s.agentVersion}${s.standalone ? ' (standalone)' : ''}, up ${fmtDuration(s.uptimeSeconds)}`],
    ['Buffer', bufferFact(b, s.sync)],
    ['Oldest not uploaded', b.oldestUnsyncedTs ? `${fmtTime(b.oldestUnsyncedTs)} (${fmtAgo(b.oldestUnsyncedTs)})` : 'nothing waiting'],
    ['Sync', `${sync.state ?? '–'}; ${lastUploadText(s, false)}${lastErrorText(sync)}`],
    ['IoT hub', s.connectivity?.hub ?? '–'],
    ['Blob Storage', s.connectivity?.blob ?? '–'],
    ...credentialFacts(sync),
    ['CPU', sys.cpu ? `${fmtPercent(sys.cpu.loadPercent)} load${sys.cpu.cores ? `, ${sys.cpu.cores} cores` : ''}` : '–'],
    ['Memory', sys.memory ? `${fmtPercent(sys.memory.usedPercent)} used, ${fmtBytes(sys.memory.availableBytes)} free` : '–'],
    ['Disk', sys.disk ? `${fmtBytes(sys.disk.freeBytes)} free (${fmtPercent(sys.disk.usedPercent)} used)` : '–'],
    ['Temperature', typeof temp === 'number' ? `${Math.round(temp)} °C` : 'no sensor'],
    ['Health', !s.health?.ok ? `failing: ${(s.health?.failing ?? []).join(', ')}` : s.health.degraded?.length ? `running, degraded: ${s.health.degraded.map((p) => s.health.checks?.[p] ?? p).join('; ')}` : 'all parts healthy'],
  ];
}

/**
 * The sync's SAS credential: when it expires (uploads stop then, and it is a restart-only setting)
 * and what is wrong with it (sync.credentialWarnings: its letters, its scope, its lifetime), so a
 * technician handing a site over sees them without reading /status (commissioning review). None
 * for a connection string with the account key, which does not expire.
 */
export function credentialFacts(sync) {
  const at = sync.targetExpiresAt;
  const warnings = sync.credentialWarnings ?? [];
  if (!at && warnings.length === 0) return [];
  let expiry = 'no expiry read';
  if (at) {
    const days = Math.floor((Date.parse(at) - gatewayNow()) / 86_400_000);
    expiry = days < 0 ? `expired ${fmtTime(at)}: uploads are refused` : `expires ${fmtTime(at)} (in ${days} day${days === 1 ? '' : 's'})`;
  }
  const said = warnings.map((w) => w.replace(/^the SAS credential of the sync target: /, ''));
  return [['Cloud credential', `SAS ${expiry}${said.length > 0 ? `; ${said.join('; ')}` : ''}`]];
}

const BLOB_PROBLEM = {
  offline: 'no connection to the cloud',
  throttled: 'the cloud asks the gateway to slow down',
  unauthorized: 'the cloud refused the gateway’s credentials',
  'container-missing': 'the cloud storage container does not exist',
};

/**
 * One line on the state of uploads to the cloud, in plain words: { text, problem }.
 * "Cloud: uploading · 84 readings waiting"; problems (no connection, refused, stopped) are flagged.
 */
export function cloudSummary(s) {
  const sync = s.sync ?? {};
  const b = s.buffer ?? {};
  const blobProblem = BLOB_PROBLEM[s.connectivity?.blob] ?? null;
  const n = typeof b.unsynced === 'number' ? b.unsynced : null;
  let what;
  let problem = false;
  switch (sync.state) {
    case 'off':
      what = 'uploads are turned off on this gateway';
      break;
    case 'not configured':
      what = 'no cloud storage configured, readings stay on the gateway';
      break;
    case 'uploading':
      // An attempt that times out is followed by the next at once, so a stalled link reads
      // "uploading" for as long as it lasts: the blob's connectivity tells that it is no upload.
      if (blobProblem) {
        what = `${blobProblem}, retrying`;
        problem = true;
      } else what = 'uploading';
      break;
    case 'retrying':
      what = `upload failed, retrying${blobProblem ? ` (${blobProblem})` : ''}${nextTryText(sync, false)}`;
      problem = true;
      break;
    case 'blocked':
      // Tried again only at the slow pace (PUMPWATCH_SYNC_SLOW_RETRY_SECONDS, 15 min by default): a
      // technician who fixed the cause (created the container) waited without a word (commissioning review).
      what = `uploads stopped: ${blobProblem ?? 'the cloud refuses them'}${nextTryText(sync, true)}`;
      problem = true;
      break;
    case 'stopped':
      what = 'uploads are not running';
      problem = true;
      break;
    case 'idle':
      if (blobProblem) {
        what = blobProblem;
        problem = true;
      } else what = n === 0 ? 'up to date' : 'waiting for the next upload';
      break;
    default:
      what = sync.state ?? 'state unknown';
  }
  const parts = [`Cloud: ${what}`];
  if (b.error) {
    parts.push('buffer unavailable');
    problem = true;
  } else if (n !== null && n > 0) parts.push(`${n.toLocaleString('en-US')} reading${n === 1 ? '' : 's'} waiting`);
  else if (n === 0 && what !== 'up to date') parts.push('nothing waiting');
  // The buffer's cap evicted readings the cloud never got: a loss, said here as on the buffer's line.
  if (lostBeforeUpload(b, sync) !== null) {
    parts.push('readings lost before upload (buffer full)');
    problem = true;
  }
  if (problem && sync.state !== 'off' && sync.state !== 'not configured') {
    parts.push(lastUploadText(s, true));
  }
  return { text: parts.join(' · '), problem };
}

/**
 * One line on the alerts for the control room, which go through the IoT hub: { text, problem }, or
 * null without the IoT Edge client or with nothing to say. With the hub down and a pump in alarm,
 * /status had `alerts.pending` 1 while the page said only that the blob uploads failed: the control
 * room had not been told, and the page did not say so.
 */
export function hubSummary(s) {
  const alerts = s.alerts;
  if (!alerts) return null;
  const n = typeof alerts.pending === 'number' ? alerts.pending : 0;
  const hub = s.connectivity?.hub ?? '';
  const since = s.connectivity?.hubUnreachableSince ?? null;
  const down = since !== null || (hub !== '' && !hub.startsWith('connected') && hub !== 'not configured');
  const waiting = `${n.toLocaleString('en-US')} alert${n === 1 ? '' : 's'}`;
  const unreachable = `the IoT hub is unreachable${since ? ` since ${fmtClock(since)}` : ''}`;
  if (down && n > 0) return { text: `${waiting} not yet delivered to the control room: ${unreachable}`, problem: true };
  if (down) return { text: `Control room: ${unreachable}; no alert waiting, a new one is kept until it is back`, problem: true };
  if (n > 0) return { text: `${waiting} being delivered to the control room`, problem: false };
  return null;
}

export function renderGateway(dl, status) {
  // A fact is a text, or parts (texts and elements, such as a red note) put side by side.
  const dd = (v) => {
    if (!Array.isArray(v)) return el('dd', '', v ?? '–');
    const e = el('dd');
    e.append(...v);
    return e;
  };
  dl.replaceChildren(...facts(status).flatMap(([k, v]) => [el('dt', '', k), dd(v)]));
}
