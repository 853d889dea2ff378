// Rendering the pumps, alerts and gateway facts. Text goes in with textContent only.
import { STATE_TEXT, fmtAgo, fmtBytes, fmtDuration, fmtNum, fmtPercent, fmtTime, shares } from './format.js';

const ORDER = { anomaly: 0, stale: 1, 'not-scored': 2, 'no-model': 3, normal: 4 };

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function badge(state) {
  return el('span', `badge s-${state}`, STATE_TEXT[state] ?? state);
}

export function topShares(contributions, n = 3) {
  return shares(contributions)
    .slice(0, n)
    .map(([name, p]) => `${name} ${Math.round(p)} %`)
    .join(', ');
}

/** Why a pump is in its state, in one sentence. */
export function pumpWhy(p) {
  if (p.state === 'anomaly') {
    const top = topShares(p.lastAlert?.contributions);
    return `Anomaly since ${fmtTime(p.anomalySince)} (${fmtAgo(p.anomalySince)})${top ? `; main contributors: ${top}` : ''}.`;
  }
  if (p.detail) return `${p.detail.charAt(0).toUpperCase()}${p.detail.slice(1)}.`;
  if (p.state === 'normal') return p.lastAlertAt ? `Normal; last alert ${fmtTime(p.lastAlertAt)}.` : 'Normal; no alert in recent readings.';
  return '';
}

/**
 * The selected pump's model and how long a span of readings it was trained on. A span under a day
 * is said out loud: such a model has not seen the pump's daily cycle. Returns { text, short }.
 */
export function modelTraining(model) {
  if (!model) return { text: '', short: false };
  const t = model.training;
  if (!t) return { text: `Scored by model ${model.version}; its training range is not recorded.`, short: false };
  const span = `${fmtDuration(t.spanMs / 1000)} of readings (${fmtTime(t.from)} to ${fmtTime(t.to)})`;
  if (!t.short) return { text: `Scored by model ${model.version}, trained on ${span}.`, short: false };
  return {
    text: `Scored by model ${model.version}, trained on only ${span}, less than a day: it has not seen this pump's daily cycle, so normal changes over the day may raise false alarms.`,
    short: true,
  };
}

export function sortPumps(pumps) {
  return [...pumps].sort((a, b) => (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) || a.pumpId.localeCompare(b.pumpId));
}

function fillPump(button, p, selected) {
  button.className = `pump s-${p.state}`;
  button.dataset.state = p.state;
  button.setAttribute('aria-pressed', String(selected));
  const last = p.lastReading;
  const model = p.model ? `Model ${p.model.version} · threshold ${fmtNum(p.model.threshold)}` : 'No model';
  const reading = last ? `Last reading ${fmtTime(last.ts)} · score ${fmtNum(last.score)}` : 'No readings yet';
  button.replaceChildren(el('span', 'pump-name', p.pumpId), badge(p.state), el('span', 'pump-line', model), el('span', 'pump-line', reading));
  const why = pumpWhy(p);
  if (why && p.state !== 'normal') button.append(el('span', 'pump-line why', why));
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

function facts(s) {
  const b = s.buffer ?? {};
  const sync = s.sync ?? {};
  const sys = s.system ?? {};
  const temp = sys.temperature?.mainCelsius ?? sys.temperature?.maxCelsius;
  return [
    ['Device', s.device],
    ['Agent', `${s.agentVersion}${s.standalone ? ' (standalone)' : ''}, up ${fmtDuration(s.uptimeSeconds)}`],
    ['Buffer', b.error ? `unavailable: ${b.error}` : `${b.rows ?? '–'} readings, ${b.unsynced ?? '–'} not yet uploaded, ${fmtBytes(b.bytes)} of ${fmtBytes(b.maxBytes)}`],
    ['Oldest not uploaded', b.oldestUnsyncedTs ? `${fmtTime(b.oldestUnsyncedTs)} (${fmtAgo(b.oldestUnsyncedTs)})` : 'nothing waiting'],
    ['Sync', `${sync.state ?? '–'}; last success ${sync.lastSuccessAt ? fmtTime(sync.lastSuccessAt) : 'never'}${sync.lastError ? `; last error: ${sync.lastError}` : ''}`],
    ['IoT hub', s.connectivity?.hub ?? '–'],
    ['Blob Storage', s.connectivity?.blob ?? '–'],
    ['CPU', sys.cpu ? `${fmtPercent(sys.cpu.loadPercent)} load${sys.cpu.cores ? `, ${sys.cpu.cores} cores` : ''}` : '–'],
    ['Memory', sys.memory ? `${fmtPercent(sys.memory.usedPercent)} used, ${fmtBytes(sys.memory.availableBytes)} free` : '–'],
    ['Disk', sys.disk ? `${fmtBytes(sys.disk.freeBytes)} free (${fmtPercent(sys.disk.usedPercent)} used)` : '–'],
    ['Temperature', typeof temp === 'number' ? `${Math.round(temp)} °C` : 'no sensor'],
    ['Health', s.health?.ok ? 'all parts healthy' : `failing: ${(s.health?.failing ?? []).join(', ')}`],
  ];
}

export function renderGateway(dl, status) {
  dl.replaceChildren(...facts(status).flatMap(([k, v]) => [el('dt', '', k), el('dd', '', v ?? '–')]));
}
