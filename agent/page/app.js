// The technician's page: state, refresh loop (live stream, polling as fallback) and sign-in.
import { ApiError, UNREACHABLE, api, getToken, lastAnswerAt, setToken, stream } from './api.js';
import { MAX_SENSOR_CHARTS, pickSensors, scoreChart, sensorCharts } from './charts.js';
import { SKEW_NOTICE_MS, clockSkewMs, noteGatewayTime } from './clock.js';
import { fmtClock, fmtDuration, fmtScorePair, timeZoneText, zoneWords } from './format.js';
import { initLabelForm } from './label-form.js';
import { initWithdrawForm } from './withdraw-form.js';
import { completeCut, episodeItemIn, episodeWhen, itemButton, renderAlerts } from './alerts.js';
import { FINDING_WHOLE, initHistory, notLabelled, wholeEpisode } from './history.js';
import { alarming, cloudSummary, deploymentNote, firstModelNote, hubSummary, isScored, modelScope, modelTraining, pumpWhy, rangeNote, refusalNote, renderGateway, renderPumps, renderValues, sortPumps } from './render.js';

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 2000;
/** Full refresh (status, pump states) even while the stream is live. */
const FULL_MS = 10_000;
/**
 * A request that fails makes the page say the agent is unreachable only once nothing was answered
 * for this long. At the first failure, on a link that drops 30 % of requests, the red banner came
 * and went (29 of 60 samples, 5 flips) while data arrived. Chosen over "two failures in a row":
 * a poll sends /status and /pumps together, and both are lost together 9 % of the time at 30 %,
 * while 5 s with no answer takes every request of two or three polls (about 1 %). A stopped agent
 * is still reported within one poll after that, by the failure that ends the span (or setLive).
 */
const NO_ANSWER_DOWN_MS = 5000;
/**
 * Pump states follow the live rows at most this often: a pump reading at 1 Hz must not make the
 * page reload every second.
 */
const PUMPS_MS = 5000;
/**
 * The alert list (the heaviest answer: megabytes with many pumps in alarm) is reloaded this often,
 * and soon after a pump raises an alarm the page does not show yet, or a label is saved. Exported
 * for the page's browser tests, which tell that soon from this period.
 */
export const ALERTS_MS = 30_000;
/** At least this long between two alert lists asked for by new alarms (a flapping pump). */
const ALERTS_MIN_MS = 3000;
const KEEP_ROWS = 300;
/**
 * The newest alerts of each pump (GET /alerts?perPump=): a pump stuck in anomaly at 1 Hz cannot push
 * the other pumps' alerts out of the list, as the newest N across all pumps did.
 */
const ALERTS_PER_PUMP = 100;

const state = {
  status: null,
  pumps: [],
  alerts: [],
  selected: null,
  rows: [],
  score: null,
  sensors: null,
  sensorNames: '',
  /** "Chart them too": every sensor charted, not the first MAX_SENSOR_CHARTS (kept for other pumps). */
  allSensors: false,
  streamLive: false,
  lastOk: 0,
  lastFull: 0,
  /** When the pump states and the alert list were last received (this device's clock, for pacing). */
  pumpsAt: 0,
  alertsAt: 0,
  /** A new alarm (or a saved label) is not in the alert list yet: the next refresh gets it. */
  alertsWanted: true,
  /**
   * What the header says: connecting | ok | down (the agent cannot be reached, or fails: the data
   * shown is not live) | auth (sign-in needed) | forbidden (not from this device).
   */
  conn: 'connecting',
  /** Why it is down: the failure's kind (unreachable | server). */
  downKind: null,
  downSince: 0,
  signedOut: false,
  /** The token the agent last accepted: when that very token fails, the gateway's token has changed. */
  goodToken: null,
  /** A token that worked, then stopped working. */
  changedToken: null,
  blocked: null, // 'auth' | 'forbidden' while the page cannot read data
  streamAbort: null,
  refreshing: null,
};

/** After a label is saved or withdrawn: both alert lists are read again, to show the label now in force. */
async function labelsChanged() {
  sayRecent('');
  await state.refreshing; // one started before the change was stored would not show it
  await Promise.all([refreshAll({ alerts: true }), alertHistory.refresh()]);
}

const labelForm = initLabelForm({ onSaved: labelsChanged });
const withdrawForm = initWithdrawForm({ onWithdrawn: labelsChanged });

/**
 * The button for `action` (label, withdraw; else the item's first) of the episode `ep` in the list
 * `listId`, redrawn since: the item of the first alert it was shown with, else an item of its pump
 * within its time range (the recent list shows a long episode's newest alerts, so its first one
 * shown moves as alerts arrive).
 */
function episodeButton(listId, ep, shownFirst, action = 'label') {
  return itemButton(episodeItemIn($(listId), { pump: ep.pumpId, first: String(shownFirst), from: ep.first.ts, to: ep.last.ts }), action);
}

/** The label dialog for an episode; focus goes back to its button in `listId` (redrawn meanwhile), else to `fallback`. */
const labelEpisode = (listId, fallback) => (ep, shownFirst = ep.first.seq) =>
  labelForm.open(
    { pumpId: ep.pumpId, alert: ep.peak, range: { from: ep.first.ts, to: ep.last.ts }, sendRange: ep.beforeAgent === true, count: ep.count ?? ep.alerts.length, label: ep.label },
    () => episodeButton(listId, ep, shownFirst) ?? $(fallback),
  );

/**
 * The withdraw dialog for an episode's label; focus goes back to its withdraw button in `listId`
 * (else the item's first: once withdrawn, the label under it may have none), else to `fallback`.
 */
const withdrawEpisode = (listId, fallback) => (ep) =>
  withdrawForm.open({ label: ep.label, when: episodeWhen(ep) }, () => episodeButton(listId, ep, ep.first.seq, 'withdraw') ?? $(fallback));
const withdrawRecent = withdrawEpisode('alerts', 'alerts-h');

/** The recent list's label dialog (the episode whole, see labelRecentWhole). */
const labelRecent = labelEpisode('alerts', 'alerts-h');
/** Says in the recent list's note what labelling is doing or why it did not (empty: hidden). */
function sayRecent(text) {
  const note = $('alerts-note');
  note.textContent = text;
  note.hidden = text === '';
}

/** A read of the recent list's episode for a label is running; `agentRun` counts the agent's restarts seen (a read across one is dropped). */
const recentRead = { running: false, agentRun: 0 };
/** The recent list's note says what a label waits for only when the wait is long enough to notice. */
const SAY_FINDING_AFTER_MS = 300;

/** Labels an episode of the recent list whole, as the agent bounds it (history.js wholeEpisode). */
async function labelRecentWhole(ep) {
  if (recentRead.running) return undefined; // a second press while its episode is read
  sayRecent('');
  const run = recentRead.agentRun;
  recentRead.running = true;
  const slow = setTimeout(() => sayRecent(FINDING_WHOLE), SAY_FINDING_AFTER_MS);
  try {
    const whole = await wholeEpisode(ep);
    clearTimeout(slow);
    sayRecent('');
    if (run !== recentRead.agentRun) return undefined; // the agent restarted meanwhile, maybe on another buffer
    return labelRecent(whole, ep.first.seq);
  } catch (err) {
    clearTimeout(slow);
    if (run !== recentRead.agentRun) return sayRecent('');
    const why = notLabelled(err);
    sayRecent(why.text);
    return why.pageFailure ? handleFailure(err) : undefined;
  } finally {
    recentRead.running = false;
  }
}

/**
 * The agent's answers on the recent list's cut episodes (GET /alerts/:seq/episode), for the alert
 * list read last: asked once per cut episode and list, so the drawings of the same list (every
 * poll) ask nothing, and a label saved anywhere in the episode, even on alerts not listed, shows at
 * the next read of the list (every 30 s, at a new alarm, after a label is saved). A failed answer
 * stays failed for that list (the item keeps what the list says).
 */
const cutAnswers = new Map();

/**
 * Per pump, the last answer on its cut episode and the id of the pump's newest label then (null:
 * none). A walk costs the agent about 3 µs an alert, one at a time: a pump in alarm for days (one
 * the generic model flags all the time) took about a second at every read of the list. The answer
 * is kept while the alerts listed still begin inside the episode it describes (an episode's
 * beginning stays where it is while it goes on) and the pump's newest label is the same, which one
 * small GET /labels tells.
 */
const cutWholes = new Map();

/** The whole of a cut episode, from cutWholes when it still holds, else asked of the agent. */
async function wholeOfCut(ep) {
  const pump = encodeURIComponent(ep.pumpId);
  // asked first: a label saved between the two answers is then seen at the next read
  const newest = (await api(`/labels?pumpId=${pump}&limit=1`)).labels[0]?.id ?? null;
  const kept = cutWholes.get(ep.pumpId);
  const at = Date.parse(ep.first.ts);
  if (kept && kept.newest === newest && at >= Date.parse(kept.whole.first.ts) && at <= Date.parse(kept.whole.last.ts)) return kept.whole;
  const whole = await api(`/alerts/${ep.first.seq}/episode?pumpId=${pump}`);
  cutWholes.set(ep.pumpId, { whole, newest });
  return whole;
}

/** Completes the items of the episodes the recent list cut (alerts.js completeCut): their label, where they began. */
function completeCutEpisodes(episodes) {
  const list = $('alerts');
  const drawing = list.dataset.drawing;
  const run = recentRead.agentRun;
  for (const ep of episodes) {
    if (!ep.partial) continue;
    const key = `${ep.pumpId} ${ep.first.seq}`;
    let answer = cutAnswers.get(key);
    if (!answer) {
      answer = wholeOfCut(ep).catch(() => null);
      cutAnswers.set(key, answer);
    }
    // only onto the drawing it was asked for, and not across an agent restart (another buffer's alerts)
    void answer.then((whole) => whole && run === recentRead.agentRun && list.dataset.drawing === drawing && completeCut(list, ep, whole, labelRecentWhole, withdrawRecent));
  }
}

const alertHistory = initHistory({
  details: $('history'),
  summary: $('history-summary'),
  note: $('history-note'),
  list: $('history-list'),
  more: $('history-more'),
  reload: $('history-reload'),
  jump: $('history-jump'),
  when: $('history-before'),
  go: $('history-go'),
  newest: $('history-newest'),
  onLabel: labelEpisode('history-list', 'history-summary'),
  onWithdraw: withdrawEpisode('history-list', 'history-summary'),
  onFailure: (err) => handleFailure(err),
});

/**
 * The time of the last data the agent sent, as a clock time on the gateway's clock (what the page
 * shows while the agent is down, beside the readings' gateway times).
 */
const lastOkClock = () => fmtClock(new Date(state.lastOk + clockSkewMs()).toISOString());

/** The header's time zone line, with a word when this device's clock is off from the gateway's. */
function renderClockNote() {
  const skew = clockSkewMs();
  let text = timeZoneText();
  if (Math.abs(skew) > SKEW_NOTICE_MS) {
    text += ` · This device’s clock is ${fmtDuration(Math.abs(skew) / 1000)} ${skew < 0 ? 'ahead of' : 'behind'} the gateway’s: times and ages shown are the gateway’s.`;
  }
  if ($('tz').textContent !== text) $('tz').textContent = text;
  // the time entered is read in the browser's zone and compared with the gateway's clock: "gateway
  // time" alone read as the gateway's own zone, which the page never shows
  const zone = `(your time zone, ${zoneWords()}, by the gateway’s clock)`;
  if ($('history-before-zone').textContent !== zone) $('history-before-zone').textContent = zone;
}

function setLive() {
  const live = $('live');
  // a request that neither answers nor fails (a dropped network) still means the data is old; an
  // agent that answers some requests of a lossy link is not gone (NO_ANSWER_DOWN_MS)
  const quietFor = Date.now() - Math.max(state.lastOk, lastAnswerAt());
  if (state.conn === 'ok' && quietFor > (state.streamLive ? FULL_MS : 0) + 3 * POLL_MS) markDown(new ApiError('unreachable', UNREACHABLE));
  let text;
  let cls;
  switch (state.conn) {
    case 'connecting':
      text = 'Connecting…';
      cls = 'pending';
      break;
    case 'auth':
      text = state.signedOut ? 'Signed out · sign-in needed' : 'Sign-in needed';
      cls = 'pending';
      break;
    case 'forbidden':
      text = 'No access from this device';
      cls = 'down';
      break;
    case 'down': {
      const what = state.downKind === 'server' ? 'Agent reporting a problem' : 'Agent unreachable';
      text = state.lastOk > 0 ? `${what} · not live, data as of ${lastOkClock()}` : what;
      cls = 'down';
      break;
    }
    default:
      text = state.streamLive ? 'Live' : `Updating every ${POLL_MS / 1000} s`;
      cls = 'ok';
  }
  live.className = `live ${cls}`;
  // a live region: only real changes are announced
  if (live.textContent !== text) live.textContent = text;
  const down = state.conn === 'down' && state.lastOk > 0;
  document.body.classList.toggle('is-down', down);
  const asOf = down ? `as of ${lastOkClock()}, not live` : '';
  for (const e of document.querySelectorAll('.as-of')) {
    e.hidden = !down;
    if (e.textContent !== asOf) e.textContent = asOf;
  }
}

function showError(err) {
  const banner = $('banner');
  if (!err) {
    banner.hidden = true;
    return;
  }
  let text = err instanceof ApiError ? err.message : 'Something went wrong on this page; reload it to try again.';
  if (state.conn === 'down' && state.lastOk > 0) {
    text += ` What you see is the state as of ${lastOkClock()}, not live; the page reconnects by itself.`;
  }
  if (banner.textContent !== text || banner.hidden) banner.textContent = text;
  banner.hidden = false;
}

/** A failure that says the agent is gone (handleFailure): the data on screen is no longer live. */
function markDown(err) {
  if (state.conn !== 'down') state.downSince = Date.now();
  state.conn = 'down';
  state.downKind = err?.kind === 'server' ? 'server' : 'unreachable';
  if (err?.message) showError(err);
  setLive();
}

/** Sign-in needed: no token yet, a wrong one, one the gateway no longer takes, or signed out. */
function showLogin(err, { signedOut = false } = {}) {
  const token = getToken();
  if (token && token === state.goodToken) state.changedToken = token;
  state.goodToken = null;
  let message = '';
  if (!signedOut && token) {
    message = token === state.changedToken ? 'The gateway’s status token has changed. Enter the new token to continue.' : (err?.message ?? '');
  }
  state.blocked = 'auth';
  state.conn = 'auth';
  state.signedOut = signedOut || (state.signedOut && !token);
  $('app').hidden = true;
  $('cloud').hidden = true;
  if (signedOut) $('device').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('sign-out').hidden = true;
  showError(null);
  setLive();
  $('token').focus();
}

function handleFailure(err) {
  if (err instanceof ApiError && err.kind === 'auth') return showLogin(err);
  if (err instanceof ApiError && err.kind === 'forbidden') {
    state.blocked = 'forbidden';
    state.conn = 'forbidden';
    $('login').hidden = true;
    showError(err);
    return setLive();
  }
  if (err instanceof ApiError && err.kind === 'bad-request') return showError(err);
  // one lost request while others get through: the next poll asks again (a page never answered,
  // or already down, is told at once)
  const answeredLately = Date.now() - lastAnswerAt() < NO_ANSWER_DOWN_MS;
  if (state.conn === 'ok' && err instanceof ApiError && err.kind === 'unreachable' && answeredLately) return undefined;
  markDown(err);
  // relative times ("3 min ago") keep counting while the data is old
  renderTimes();
}

function noModelNotice(status) {
  const active = Object.values(status.models ?? {}).some((m) => m.status === 'active');
  const notice = $('notice');
  notice.hidden = active;
  notice.textContent = active ? '' : 'No model yet: readings are stored on the gateway, but no pump is scored until a model arrives from the cloud.';
}

function renderCloud(status) {
  const { text, problem } = cloudSummary(status);
  $('cloud').hidden = false;
  $('cloud').className = `cloud${problem ? ' problem' : ''}`;
  if ($('cloud-text').textContent !== text) $('cloud-text').textContent = text;
}

function renderHub(status) {
  const summary = hubSummary(status);
  $('hub').hidden = summary === null;
  $('hub').className = `cloud${summary?.problem ? ' problem' : ''}`;
  const text = summary?.text ?? '';
  if ($('hub-text').textContent !== text) $('hub-text').textContent = text;
}

function onSelect(pumpId) {
  if (state.selected !== pumpId) {
    state.selected = pumpId;
    state.rows = [];
    destroyCharts();
  }
  renderPumps($('pumps'), state.pumps, state.selected, onSelect);
  void loadSelected(true).then(() => {
    // On a phone the details are below the list; so are they on a laptop with many pumps, or zoomed
    // to 200 % (the details 1 700–4 600 px down, 61 Tabs away): take the technician there whenever
    // their heading is out of view, not on a phone only.
    const h = $('detail-h').getBoundingClientRect();
    if (window.matchMedia('(max-width: 40rem)').matches || h.top < 0 || h.bottom > window.innerHeight) {
      $('detail').scrollIntoView({ block: 'start' });
      $('detail-h').focus({ preventScroll: true });
    }
  });
}

function destroyCharts() {
  state.score?.destroy();
  state.sensors?.destroy();
  state.score = state.sensors = null;
  state.sensorNames = '';
}

function renderModel(p) {
  const model = p.model;
  const deployed = deploymentNote(p);
  $('detail-deployment').hidden = !deployed;
  $('detail-deployment').textContent = deployed?.text ?? '';
  $('detail-deployment').className = `deploy-note${deployed?.problem ? ' problem' : ''}`;
  const scope = modelScope(model);
  $('detail-model-box').hidden = !scope;
  if (!scope) return;
  $('detail-model-box').className = `model-box ${scope.generic ? 'generic' : 'own'}`;
  $('detail-model-kind').textContent = scope.badge;
  $('detail-model-kind').className = `badge ${scope.generic ? 'model-generic' : 'model-own'}`;
  $('detail-model-warning').hidden = !scope.warning;
  $('detail-model-warning').textContent = scope.warning;
  const range = rangeNote(p);
  $('detail-range').hidden = !range;
  $('detail-range').textContent = range;
  const training = modelTraining(model, isScored(p));
  $('detail-model').textContent = training.text;
  $('detail-model').className = training.short ? 'model-line short' : 'model-line';
}

/** The selected pump's state in words, with the warning about refused readings when there is one. */
const detailWhy = (p) => [pumpWhy(p), refusalNote(p)].filter(Boolean).join(' ');

function renderDetail() {
  const p = state.pumps.find((x) => x.pumpId === state.selected);
  const detail = $('detail');
  if (!p) {
    detail.hidden = true;
    return;
  }
  detail.hidden = false;
  $('detail-h').textContent = `Pump ${p.pumpId}`;
  alertHistory.select(p.pumpId);
  $('detail-why').textContent = detailWhy(p);
  renderModel(p);
  const first = firstModelNote(state.status?.firstModels, p.pumpId);
  $('detail-first-model').hidden = !first;
  $('detail-first-model').textContent = first?.text ?? '';
  $('detail-first-model').className = `first-model-note${first?.problem ? ' problem' : ''}`;
  const threshold = p.model?.threshold ?? null;
  $('chart-empty').hidden = state.rows.length > 0;
  const last = state.rows.at(-1);
  const [scoreText, thresholdText] = fmtScorePair(last?.score, threshold); // side by side: digits enough to compare
  $('score-chart').setAttribute(
    'aria-label',
    last
      ? `Anomaly score of the last ${state.rows.length} readings; latest ${last.score === null ? 'not scored' : scoreText}, threshold ${threshold === null ? 'none' : thresholdText}`
      : 'No readings yet',
  );
  if (state.score) state.score.update(state.rows, threshold);
  else if (state.rows.length > 0) state.score = scoreChart($('score-chart'), state.rows, threshold);
  const { charted: names, left } = pickSensors(state.rows, p.model?.features, state.allSensors ? Infinity : MAX_SENSOR_CHARTS);
  $('sensors-more').hidden = left.length === 0;
  const moreText = left.length === 0 ? '' : `${left.length} more sensor${left.length === 1 ? '' : 's'} not charted: ${left.join(', ')}.`;
  if ($('sensors-more-text').textContent !== moreText) $('sensors-more-text').textContent = moreText;
  if (names.join('|') !== state.sensorNames) {
    state.sensors?.destroy();
    state.sensors = sensorCharts($('sensor-charts'), state.rows, names);
    state.sensorNames = names.join('|');
  } else state.sensors?.update(state.rows);
  renderValues($('values-body'), last);
}

/** Texts with relative times, redrawn from what the page has (used while the agent is down). */
function renderTimes() {
  if (state.pumps.length === 0) return;
  renderPumps($('pumps'), state.pumps, state.selected, onSelect);
  const p = state.pumps.find((x) => x.pumpId === state.selected);
  if (p) $('detail-why').textContent = detailWhy(p);
}

/**
 * Adds new rows to those held. 'reset' when they cannot follow them: a sequence number held with
 * another time, or one below the newest held. The agent's buffer was reset (its sequence numbers
 * start again at 1): the held rows are another buffer's, and the pump is loaded again.
 */
function mergeRows(rows) {
  const held = new Map(state.rows.map((r) => [r.seq, r.ts]));
  const newest = state.rows.at(-1)?.seq ?? 0;
  if (rows.some((r) => (held.has(r.seq) ? held.get(r.seq) !== r.ts : r.seq < newest))) return 'reset';
  const fresh = rows.filter((r) => !held.has(r.seq));
  if (fresh.length === 0) return false;
  state.rows = [...state.rows, ...fresh].sort((a, b) => a.seq - b.seq).slice(-KEEP_ROWS);
  return true;
}

async function loadSelected(full) {
  const id = state.selected;
  if (!id) return;
  // New rows are those after the newest sequence number held: an index range for the agent (a
  // poll by time walked back through all of the pump's rows).
  const after = !full && state.rows.length > 0 ? `&afterSeq=${state.rows.at(-1).seq}` : '';
  const res = await api(`/pumps/${encodeURIComponent(id)}/predictions?limit=${KEEP_ROWS}${after}`).catch(handleFailure);
  if (!res || id !== state.selected) return;
  if (full) state.rows = res.predictions;
  // `more`: the page is behind by more than the rows it keeps; the newest of them are what it shows.
  else if (res.more) return loadSelected(true);
  else if (mergeRows(res.predictions) === 'reset') return loadSelected(true);
  renderDetail();
}

/** GET /pumps, noting the gateway's clock from its `at` (ages and "now" on the page are the gateway's). */
async function getPumps() {
  const sent = Date.now();
  const res = await api('/pumps');
  noteGatewayTime(res.at, sent, Date.now());
  state.pumpsAt = Date.now();
  return res;
}

/** A pump alarming now that was not (or with another streak) in what the page shows: its alert is not listed yet. */
function newAlarm(before, after) {
  const old = new Map(before.map((p) => [p.pumpId, p]));
  return after.some((p) => alarming(p) && (!old.get(p.pumpId) || !alarming(old.get(p.pumpId)) || old.get(p.pumpId).anomalySince !== p.anomalySince));
}

/** The pump states only (what live rows change): cheap, unlike the alert list. */
async function refreshPumps() {
  if (state.blocked || state.refreshing) return;
  const token = getToken();
  try {
    const pumps = await getPumps();
    if (getToken() !== token || state.blocked || state.refreshing) return;
    if (newAlarm(state.pumps, pumps.pumps)) state.alertsWanted = true;
    state.pumps = pumps.pumps;
    state.lastOk = Date.now();
    renderClockNote();
    renderPumps($('pumps'), state.pumps, state.selected, onSelect);
    $('pumps-empty').hidden = state.pumps.length > 0;
    renderDetail();
    if (state.alertsWanted) void refreshAll();
  } catch (err) {
    if (getToken() === token) handleFailure(err);
  }
}

const getAlerts = () => api(`/alerts?perPump=${ALERTS_PER_PUMP}`);

/**
 * Status and pump states, and the alert list when it is due (ALERTS_MS), asked for (`alerts`, a
 * new alarm) or shows an alarm it does not list yet.
 */
async function refreshAll({ alerts: wantAlerts = false } = {}) {
  if (state.blocked === 'auth') return undefined; // until the technician signs in
  if (wantAlerts) state.alertsWanted = true;
  if (state.refreshing) return state.refreshing;
  state.refreshing = (async () => {
    const token = getToken();
    try {
      // after an outage the list is loaded again at once
      const due = state.alertsWanted || state.conn !== 'ok' || Date.now() - state.alertsAt >= ALERTS_MS;
      // While the agent does not answer, only /status is asked, the smallest answer: the pumps and the
      // alert list (87 kB with 62 pumps, 6 MB with 100 in alarm) come once it answers. Before, every
      // try asked all three, about every 1.25 s, on a site's Wi-Fi that may be why it failed.
      const probe = state.conn === 'down' ? await api('/status') : null;
      if (due) state.alertsWanted = false; // a new alarm seen while this refresh runs asks again
      const [status, pumps, listed] = await Promise.all([probe ?? api('/status'), getPumps(), due ? getAlerts() : null]);
      let alerts = listed;
      if (!alerts && newAlarm(state.pumps, pumps.pumps)) alerts = await getAlerts();
      if (getToken() !== token) return; // signed out (or in with another token) meanwhile
      const before = state.status;
      // Another start of the agent (its buffer may have been reset): the rows held may be another buffer's.
      const restarted = before !== null && (before.startedAt !== status.startedAt || status.uptimeSeconds < before.uptimeSeconds);
      if (restarted) {
        // what the recent list said of a label was of the old run, and a read across the restart is dropped
        recentRead.agentRun += 1;
        sayRecent('');
        cutAnswers.clear(); // its seqs may be another buffer's now
        cutWholes.clear();
      }
      if (alerts) {
        state.alertsAt = Date.now();
        cutAnswers.clear(); // a new list: its cut episodes are asked about afresh
      }
      Object.assign(state, { status, pumps: pumps.pumps, alerts: alerts ? alerts.alerts : state.alerts, lastOk: Date.now(), lastFull: Date.now(), blocked: null });
      state.conn = 'ok';
      state.downKind = null;
      state.signedOut = false;
      state.goodToken = token;
      state.changedToken = null;
      $('login').hidden = true;
      $('app').hidden = false;
      $('sign-out').hidden = !getToken();
      $('device').textContent = `· gateway ${status.device}`;
      showError(null);
      noModelNotice(status);
      renderCloud(status);
      renderHub(status);
      renderClockNote();
      if (!state.selected && state.pumps.length > 0) {
        state.selected = (sortPumps(state.pumps).find(alarming) ?? state.pumps[0]).pumpId;
        await loadSelected(true);
      } else if (restarted && state.selected) {
        await loadSelected(true);
        void alertHistory.refresh({ restarted: true }); // the agent may have started on another buffer
      }
      renderPumps($('pumps'), state.pumps, state.selected, onSelect);
      $('pumps-empty').hidden = state.pumps.length > 0;
      completeCutEpisodes(renderAlerts($('alerts'), $('alerts-empty'), state.alerts, ALERTS_PER_PUMP, labelRecentWhole, withdrawRecent));
      renderGateway($('gateway'), status);
      renderDetail();
      // a history read that failed is made again (it does nothing otherwise): a lost request no
      // longer marks the page down (NO_ANSWER_DOWN_MS), so not only after an outage
      alertHistory.reconnected();
      setLive();
    } catch (err) {
      if (getToken() === token) handleFailure(err);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

let followUp = null;
let followUpAt = 0;
/** Runs `fn` in `ms`, unless a follow-up is due sooner already. */
function followUpIn(ms, fn) {
  if (followUp && followUpAt <= Date.now() + ms) return;
  clearTimeout(followUp);
  followUpAt = Date.now() + ms;
  followUp = setTimeout(() => {
    followUp = null;
    fn();
  }, ms);
}

/**
 * A live `rows` event: new points on the chart now; pump states at most every PUMPS_MS; the alert
 * list soon only when a pump raises an alarm the page does not show (one that stays in anomaly
 * does not: its alerts come with the list's own refresh).
 */
function onRows(data) {
  state.lastOk = Date.now();
  const mine = data.pumps?.[state.selected];
  const merged = mine ? mergeRows(mine) : false;
  if (merged === 'reset') void loadSelected(true);
  else if (merged) renderDetail();
  const shown = new Map(state.pumps.map((p) => [p.pumpId, p]));
  const alarm = Object.entries(data.pumps ?? {}).some(([id, rows]) => rows.some((r) => r.anomaly === true) && !(shown.has(id) && alarming(shown.get(id))));
  if (alarm) {
    state.alertsWanted = true;
    followUpIn(Math.max(1000, state.alertsAt + ALERTS_MIN_MS - Date.now()), () => void refreshAll());
  } else followUpIn(Math.max(1000, state.pumpsAt + PUMPS_MS - Date.now()), () => void refreshPumps());
}

async function streamLoop() {
  for (;;) {
    if (state.blocked) {
      await sleep(POLL_MS);
      continue;
    }
    const abort = (state.streamAbort = new AbortController());
    try {
      await stream(
        (name, data) => (name === 'rows' ? onRows(data) : undefined),
        () => {
          state.streamLive = true;
          setLive();
        },
        abort.signal,
      );
    } catch (err) {
      // A stream that cannot be opened or is cut (a proxy's idle timeout, one that blocks streams)
      // is no sign of the agent by itself: the refresh below asks it at once, and says it is down
      // when it does not answer. Marking it down here made a page whose stream a proxy blocks read
      // "Agent unreachable" most of the time, its polls answered.
      if (!abort.signal.aborted && err instanceof ApiError && err.kind === 'auth') showLogin(err);
    }
    state.streamLive = false;
    // the stream ended (an agent stopping ends it cleanly): check at once rather than at the next poll;
    // while the agent is down the poll's own tries are enough
    if (!abort.signal.aborted && !state.blocked && state.conn !== 'down') void refreshAll();
    setLive();
    await sleep(3000);
  }
}

async function pollLoop() {
  for (;;) {
    if (state.blocked !== 'auth') {
      const due = !state.streamLive || Date.now() - state.lastFull >= FULL_MS;
      if (due) {
        await refreshAll();
        if (!state.streamLive && state.conn === 'ok') await loadSelected(false);
      }
    }
    setLive();
    await sleep(POLL_MS);
  }
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    $('login-error').textContent = 'Enter the status token.';
    return;
  }
  setToken(token);
  $('token').value = '';
  $('login-error').textContent = 'Checking…';
  state.blocked = null;
  state.streamAbort?.abort();
  void refreshAll({ alerts: true });
});

$('sign-out').addEventListener('click', () => {
  setToken(null);
  state.streamAbort?.abort();
  showLogin(null, { signedOut: true });
});

$('sensors-all').addEventListener('click', () => {
  state.allSensors = true;
  renderDetail();
  $('sensor-charts').lastElementChild?.scrollIntoView({ block: 'nearest' });
});

$('record-maintenance').addEventListener('click', () => {
  if (state.selected) labelForm.open({ pumpId: state.selected, kind: 'maintenance' }, () => $('record-maintenance'));
});

renderClockNote();
void pollLoop();
void streamLoop();
