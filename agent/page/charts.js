// Charts of one pump: its anomaly score against the model's threshold, and its sensor values
// below it (uPlot, served by the agent from its own node_modules; `uPlot` is a global).

import { fmtTime } from './format.js';

const INK = '#1b1b1b';
const GRID = '#d6d6d6';
const SCORE = '#1f4e8c';
const ALARM = '#b00020';
const SENSOR_COLORS = ['#1f4e8c', '#6b3fa0', '#0b6b2c', '#8a4b00', '#00606b', '#7a1f5c'];
/** Charted at first: six small charts fit a phone's screen below the score; the rest on demand. */
export const MAX_SENSOR_CHARTS = 6;

const axis = (extra = {}) => ({ stroke: INK, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID }, font: '12px system-ui, sans-serif', ...extra });

/**
 * The time axis's labels in the page's locale, as every other time on the page (uPlot's own are
 * US-style whatever the locale: "3:30am" over "12/7/26", which a European reads as 12 July): the
 * time of each tick (with seconds when ticks are under a minute apart), and the day under the
 * first tick and under each tick of a new day; the day alone for ticks a day or more apart.
 * `locale`: undefined for the browser's. Returns uPlot's `values(u, splits, axisIdx, space, incr)`.
 */
export function timeTicks(locale) {
  const hm = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
  const hms = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const day = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short' });
  return (u, splits, axisIdx, space, incr) => {
    let shownDay = null;
    return splits.map((s) => {
      const d = new Date(s * 1000);
      if (incr >= 86_400) return day.format(d);
      const time = (incr < 60 ? hms : hm).format(d);
      const today = d.toDateString();
      if (today === shownDay) return time;
      shownDay = today;
      return `${time}\n${day.format(d)}`;
    });
  };
}
const localTicks = timeTicks(undefined);

function widthOf(el) {
  return Math.max(240, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 320));
}

/** One uPlot chart that follows its container's width. */
class Chart {
  constructor(el, opts) {
    this.el = el;
    this.plot = new uPlot({ ...opts, width: widthOf(el) }, opts.data, el);
    this.observer = new ResizeObserver(() => this.plot.setSize({ width: widthOf(el), height: opts.height }));
    this.observer.observe(el);
  }

  set(data) {
    this.plot.setData(data);
  }

  destroy() {
    this.observer.disconnect();
    this.plot.destroy();
  }
}

/** 0, ±1, ±10, ±0.1 …: the only ticks and grid lines of the asinh score axis. */
const isDecade = (v) => v === 0 || Math.abs(Math.log10(Math.abs(v)) - Math.round(Math.log10(Math.abs(v)))) < 1e-9;
const decades = (_u, splits) => splits.map((v) => (isDecade(v) ? v : null));

const secs = (rows) => rows.map((r) => Date.parse(r.ts) / 1000);

/**
 * Score (line), threshold (dashed) and anomalies (red dots). The y scale is asinh (linear near
 * zero, logarithmic above a tenth of the threshold), so normal scores stay readable next to a
 * fault scoring a hundred times the threshold.
 */
export function scoreChart(el, rows, threshold) {
  const data = scoreData(rows, threshold);
  const linear = typeof threshold === 'number' && threshold > 0 ? threshold / 10 : 1;
  const chart = new Chart(el, {
    height: 200,
    data,
    cursor: { sync: { key: 'pump' }, drag: { x: false, y: false } },
    // on a phone the live legend (time and values under the cursor) only crowds the chart: a key
    legend: { show: true, live: !globalThis.matchMedia?.('(max-width: 40rem)').matches },
    scales: { x: { time: true }, y: { distr: 4, asinh: linear } },
    // ticks at least 90 px apart: a locale's time with seconds ("02:44:10 AM") is about 75 px wide
    axes: [axis({ values: localTicks, space: 90 }), axis({ size: 56, filter: decades, grid: { stroke: GRID, width: 1, filter: decades }, ticks: { stroke: GRID, filter: decades } })],
    series: [
      // the time under the cursor as the page writes times (uPlot's own is US-style)
      { label: 'Time', value: (u, v) => (v == null ? '–' : fmtTime(new Date(v * 1000).toISOString())) },
      { label: 'Score', stroke: SCORE, width: 2, spanGaps: false },
      { label: 'Threshold', stroke: ALARM, width: 1.5, dash: [6, 4], points: { show: false } },
      { label: 'Anomaly', stroke: ALARM, fill: ALARM, width: 0, paths: () => null, points: { show: true, size: 7, fill: ALARM, stroke: ALARM } },
    ],
  });
  el.dataset.points = String(rows.length);
  return {
    update(nextRows, nextThreshold) {
      chart.set(scoreData(nextRows, nextThreshold));
      el.dataset.points = String(nextRows.length);
    },
    destroy: () => chart.destroy(),
  };
}

function scoreData(rows, threshold) {
  return [
    secs(rows),
    rows.map((r) => r.score),
    rows.map(() => (typeof threshold === 'number' ? threshold : null)),
    rows.map((r) => (r.anomaly ? r.score : null)),
  ];
}

/** Small stacked charts, one per sensor, sharing the score chart's cursor. */
export function sensorCharts(container, rows, sensors) {
  container.replaceChildren();
  const charts = sensors.map((name, i) => {
    const box = document.createElement('div');
    box.className = 'sensor-chart';
    const title = document.createElement('p');
    title.className = 'sensor-name';
    title.textContent = name;
    const plotEl = document.createElement('div');
    plotEl.setAttribute('role', 'img');
    plotEl.setAttribute('aria-label', `Chart of ${name} over the same time range`);
    box.append(title, plotEl);
    container.append(box);
    const chart = new Chart(plotEl, {
      height: 90,
      data: sensorData(rows, name),
      cursor: { sync: { key: 'pump' }, drag: { x: false, y: false } },
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [axis({ show: false }), axis({ size: 56 })],
      series: [{}, { label: name, stroke: SENSOR_COLORS[i % SENSOR_COLORS.length], width: 1.5 }],
    });
    return { name, chart };
  });
  return {
    update(nextRows) {
      for (const c of charts) c.chart.set(sensorData(nextRows, c.name));
    },
    destroy() {
      for (const c of charts) c.chart.destroy();
      container.replaceChildren();
    },
  };
}

function sensorData(rows, name) {
  return [secs(rows), rows.map((r) => (typeof r.values?.[name] === 'number' ? r.values[name] : null))];
}

/**
 * Which sensors to chart: the ones contributing most to the pump's latest alert first, then the
 * model's features in order, then any other value, at most `max`: { charted, left } (the sensors
 * beyond it, which the page names: with the default model's 8 features, 2 were left out unsaid).
 */
export function pickSensors(rows, features, max = MAX_SENSOR_CHARTS) {
  const names = new Set();
  const lastAlert = [...rows].reverse().find((r) => r.anomaly && r.contributions);
  if (lastAlert) {
    for (const [n] of Object.entries(lastAlert.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))) names.add(n);
  }
  for (const f of features ?? []) names.add(f);
  for (const r of rows.slice(-1)) for (const n of Object.keys(r.values ?? {})) names.add(n);
  const all = [...names];
  return { charted: all.slice(0, max), left: all.slice(max) };
}
