// The technician's page: state, refresh loop (live stream, polling as fallback) and sign-in.
import { ApiError, api, getToken, setToken, stream } from './api.js';
import { pickSensors, scoreChart, sensorCharts } from './charts.js';
import { fmtTime } from './format.js';
import { initLabelForm } from './label-form.js';
import { renderAlerts } from './alerts.js';
import { modelTraining, pumpWhy, renderGateway, renderPumps, renderValues } from './render.js';

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 2000;
/** Full refresh (status, pump states, alerts) even while the stream is live. */
const FULL_MS = 10_000;
const KEEP_ROWS = 300;

const state = {
  status: null,
  pumps: [],
  alerts: [],
  selected: null,
  rows: [],
  score: null,
  sensors: null,
  sensorNames: '',
  streamLive: false,
  lastOk: 0,
  lastFull: 0,
  blocked: null, // 'auth' | 'forbidden' while the page cannot read data
  streamAbort: null,
  refreshing: null,
};

const labelForm = initLabelForm({ onSaved: () => void refreshAll() });

function setLive() {
  const live = $('live');
  const down = Date.now() - state.lastOk > 3 * POLL_MS && state.lastOk > 0;
  live.className = `live ${down || state.lastOk === 0 ? 'down' : 'ok'}`;
  let text;
  if (state.lastOk === 0) text = 'Connecting…';
  else if (down) text = `Agent unreachable · last update ${fmtTime(new Date(state.lastOk).toISOString())}`;
  else text = state.streamLive ? 'Live' : `Updating every ${POLL_MS / 1000} s`;
  // a live region: only real changes are announced
  if (live.textContent !== text) live.textContent = text;
}

function showError(err) {
  const banner = $('banner');
  if (!err) {
    banner.hidden = true;
    return;
  }
  const text = err instanceof ApiError ? err.message : 'Something went wrong on this page; reload it to try again.';
  if (banner.textContent !== text || banner.hidden) banner.textContent = text;
  banner.hidden = false;
}

function showLogin(err) {
  state.blocked = 'auth';
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = getToken() ? err.message : '';
  $('sign-out').hidden = true;
  showError(null);
  $('token').focus();
}

function handleFailure(err) {
  if (err instanceof ApiError && err.kind === 'auth') return showLogin(err);
  if (err instanceof ApiError && err.kind === 'forbidden') {
    state.blocked = 'forbidden';
    $('login').hidden = true;
  }
  showError(err);
  setLive();
}

function noModelNotice(status) {
  const active = Object.values(status.models ?? {}).some((m) => m.status === 'active');
  const notice = $('notice');
  notice.hidden = active;
  notice.textContent = active ? '' : 'No model yet: readings are stored on the gateway, but no pump is scored until a model arrives from the cloud.';
}

function onSelect(pumpId) {
  if (state.selected !== pumpId) {
    state.selected = pumpId;
    state.rows = [];
    destroyCharts();
  }
  renderPumps($('pumps'), state.pumps, state.selected, onSelect);
  void loadSelected(true).then(() => {
    // on a phone the details are below the list: take the technician there
    if (window.matchMedia('(max-width: 40rem)').matches) {
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

function renderDetail() {
  const p = state.pumps.find((x) => x.pumpId === state.selected);
  const detail = $('detail');
  if (!p) {
    detail.hidden = true;
    return;
  }
  detail.hidden = false;
  $('detail-h').textContent = `Pump ${p.pumpId}`;
  $('detail-why').textContent = pumpWhy(p);
  const training = modelTraining(p.model);
  $('detail-model').textContent = training.text;
  $('detail-model').className = training.short ? 'model-line short' : 'model-line';
  const threshold = p.model?.threshold ?? null;
  $('chart-empty').hidden = state.rows.length > 0;
  const last = state.rows.at(-1);
  $('score-chart').setAttribute(
    'aria-label',
    last ? `Anomaly score of the last ${state.rows.length} readings; latest ${last.score ?? 'not scored'}, threshold ${threshold ?? 'none'}` : 'No readings yet',
  );
  if (state.score) state.score.update(state.rows, threshold);
  else if (state.rows.length > 0) state.score = scoreChart($('score-chart'), state.rows, threshold);
  const names = pickSensors(state.rows, p.model?.features);
  if (names.join('|') !== state.sensorNames) {
    state.sensors?.destroy();
    state.sensors = sensorCharts($('sensor-charts'), state.rows, names);
    state.sensorNames = names.join('|');
  } else state.sensors?.update(state.rows);
  renderValues($('values-body'), last);
}

function mergeRows(rows) {
  const seen = new Set(state.rows.map((r) => r.seq));
  const fresh = rows.filter((r) => !seen.has(r.seq));
  if (fresh.length === 0) return false;
  state.rows = [...state.rows, ...fresh].sort((a, b) => a.seq - b.seq).slice(-KEEP_ROWS);
  return true;
}

async function loadSelected(full) {
  const id = state.selected;
  if (!id) return;
  const since = !full && state.rows.length > 0 ? `&since=${encodeURIComponent(state.rows.at(-1).ts)}` : '';
  const res = await api(`/pumps/${encodeURIComponent(id)}/predictions?limit=${KEEP_ROWS}${since}`).catch(handleFailure);
  if (!res || id !== state.selected) return;
  if (full) state.rows = res.predictions;
  else mergeRows(res.predictions);
  renderDetail();
}

async function refreshAll() {
  if (state.refreshing) return state.refreshing;
  state.refreshing = (async () => {
    try {
      const [status, pumps, alerts] = await Promise.all([api('/status'), api('/pumps'), api('/alerts?limit=300')]);
      Object.assign(state, { status, pumps: pumps.pumps, alerts: alerts.alerts, lastOk: Date.now(), lastFull: Date.now(), blocked: null });
      $('login').hidden = true;
      $('app').hidden = false;
      $('sign-out').hidden = !getToken();
      $('device').textContent = `· gateway ${status.device}`;
      showError(null);
      noModelNotice(status);
      if (!state.selected && state.pumps.length > 0) {
        state.selected = (state.pumps.find((p) => p.state === 'anomaly') ?? state.pumps[0]).pumpId;
        await loadSelected(true);
      }
      renderPumps($('pumps'), state.pumps, state.selected, onSelect);
      $('pumps-empty').hidden = state.pumps.length > 0;
      renderAlerts($('alerts'), $('alerts-empty'), state.alerts, (ep) =>
        labelForm.open({ pumpId: ep.pumpId, alert: ep.peak, range: { from: ep.first.ts, to: ep.last.ts }, count: ep.alerts.length, label: ep.label }),);
      renderGateway($('gateway'), status);
      renderDetail();
      setLive();
    } catch (err) {
      handleFailure(err);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

let followUp = null;
/** A live `rows` event: new points on the chart now, pump states and alerts shortly after. */
function onRows(data) {
  state.lastOk = Date.now();
  const mine = data.pumps?.[state.selected];
  if (mine && mergeRows(mine)) renderDetail();
  followUp ??= setTimeout(() => {
    followUp = null;
    void refreshAll();
  }, 1000);
}

async function streamLoop() {
  for (;;) {
    if (state.blocked) {
      await sleep(POLL_MS);
      continue;
    }
    state.streamAbort = new AbortController();
    try {
      await stream(
        (name, data) => (name === 'rows' ? onRows(data) : undefined),
        () => {
          state.streamLive = true;
          setLive();
        },
        state.streamAbort.signal,
      );
    } catch {
      // unreachable or refused: polling carries on; the stream is retried below
    }
    state.streamLive = false;
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
        if (!state.streamLive) await loadSelected(false);
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
  void refreshAll();
});

$('sign-out').addEventListener('click', () => {
  setToken(null);
  state.streamAbort?.abort();
  showLogin(new ApiError('auth', ''));
});

$('record-maintenance').addEventListener('click', () => {
  if (state.selected) labelForm.open({ pumpId: state.selected, kind: 'maintenance' });
});

void pollLoop();
void streamLoop();
