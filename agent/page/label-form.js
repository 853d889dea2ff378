// The label dialog: a technician's verdict on an alert (confirmed fault with its type, false
// alarm) or a maintenance window during which a pump's readings are not normal operation.
import { api } from './api.js';
import { announce } from './announce.js';
import { dialogSession, failedWhy } from './dialog.js';
import { SKEW_NOTICE_MS, clockSkewMs, gatewayNow } from './clock.js';
import { KIND_TEXT, fmtDuration, fmtNum, fmtTime, verdictText, zoneWords } from './format.js';

const AUTHOR_KEY = 'pumpwatch.author';
/**
 * A maintenance that starts later than this after the gateway's now is refused here: it is a
 * device clock or a typo hours off, and would leave the real maintenance readings in training.
 */
const FUTURE_START_MS = 5 * 60_000;
const $ = (id) => document.getElementById(id);

/** `yyyy-mm-ddThh:mm` in local time, as a datetime-local input wants it (the range inputs are to the minute). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/**
 * A range input's value (local time) as epoch ms. A time to the minute means its whole minute: a
 * start is the start of that minute, an end the end of it ("until 10:15" takes in 10:15:59.999), so
 * "until now" leaves none of the last minute's maintenance readings to be trained on as normal.
 */
function rangeTime(value, { end = false } = {}) {
  const ms = Date.parse(value);
  return end && /T\d\d:\d\d$/.test(value) ? ms + 59_999 : ms;
}

/** The name the technician gave last (this browser's localStorage), or ''. */
export function rememberedAuthor() {
  try {
    return localStorage.getItem(AUTHOR_KEY) ?? '';
  } catch {
    return '';
  }
}

export function remember(author) {
  try {
    localStorage.setItem(AUTHOR_KEY, author);
  } catch {
    // not remembered: asked again next time
  }
}

/**
 * What the technician is told after a save: the verdict, the pump, that it is stored, and, when the
 * alarm still runs (`episodeOpen`), that the label covers it until it ends.
 */
function savedText(label) {
  const what = verdictText(label);
  const open = label.episodeOpen ? ' The alarm is still going on: the label will cover it until it ends.' : '';
  return `Label saved: ${what} on ${label.pumpId}.${open}`;
}

/**
 * "Gateway time now: 16:02:10, in your time zone (Europe/Paris)", and how far this device's clock
 * is off when it is: the gateway's clock, shown in the browser's zone, not the gateway's own.
 */
function gatewayTimeText(now) {
  const skew = clockSkewMs();
  const off = Math.abs(skew) > SKEW_NOTICE_MS ? ` (this device’s clock is ${fmtDuration(Math.abs(skew) / 1000)} ${skew < 0 ? 'ahead' : 'behind'}; the times offered are the gateway’s)` : '';
  return `Gateway time now: ${fmtTime(new Date(now).toISOString())}, in your time zone (${zoneWords(new Date(now))})${off}.`;
}

/** onSaved(label) may return a promise (the page's refresh): focus goes back once it is done. */
export function initLabelForm({ onSaved }) {
  const dialog = $('label-dialog');
  const form = $('label-form');
  const error = $('label-error');
  let ctx = null;
  /** 'validation' errors go away as soon as the technician changes something; a failed save stays. */
  let errorKind = null;
  const session = dialogSession(dialog, $('label-save'), 'Saving…');

  function setError(text, kind) {
    error.textContent = text;
    errorKind = text ? kind : null;
  }

  function kind() {
    return form.elements.kind.value;
  }

  function showFields() {
    $('fault-fields').hidden = kind() !== 'confirmed-fault';
    $('range-fields').hidden = kind() !== 'maintenance';
  }

  function validate() {
    const k = kind();
    if (!k) return ['Choose a verdict: confirmed fault, false alarm or maintenance.', form.elements.kind[0]];
    if (k === 'confirmed-fault' && !$('fault-type').value) return ['Choose the fault type.', $('fault-type')];
    if (k === 'maintenance') {
      const from = rangeTime($('range-from').value);
      const to = rangeTime($('range-to').value, { end: true });
      if (!Number.isFinite(from) || !Number.isFinite(to)) return ['Enter when the maintenance started and ended.', $('range-from')];
      if (to < from) return ['The maintenance end is before its start.', $('range-to')];
      if (from > gatewayNow() + FUTURE_START_MS) {
        return [`The maintenance starts at ${fmtTime(new Date(from).toISOString())}, after the gateway’s time now (${fmtTime(new Date(gatewayNow()).toISOString())}): record it once it has started, with the gateway’s times.`, $('range-from')];
      }
    }
    if (!$('author').value.trim()) return ['Enter your name, so the label says who made it.', $('author')];
    return null;
  }

  function body() {
    const k = kind();
    const b = { pumpId: ctx.pumpId, kind: k, author: $('author').value.trim(), note: $('note').value.trim() || null };
    // A verdict on a whole episode names its alert alone: the agent covers the episode, and follows
    // it to its end while it runs (a range sent covered it only up to when the list was read). A
    // range goes only where the page means one the agent does not know (ctx.sendRange: alerts
    // evicted from the episode's start). Maintenance has its own range.
    if (ctx.alert) b.alertSeq = ctx.alert.seq;
    if (ctx.alert && ctx.range && ctx.sendRange) Object.assign(b, ctx.range);
    if (k === 'confirmed-fault') b.faultType = $('fault-type').value;
    if (k === 'maintenance') {
      b.from = new Date(rangeTime($('range-from').value)).toISOString();
      b.to = new Date(rangeTime($('range-to').value, { end: true })).toISOString();
    }
    return b;
  }

  const clearStale = () => {
    if (errorKind === 'validation') setError('', null);
  };
  form.addEventListener('change', () => {
    showFields();
    clearStale();
  });
  form.addEventListener('input', clearStale);
  $('label-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const problem = validate();
    if (problem) {
      setError(problem[0], 'validation');
      problem[1].focus();
      return;
    }
    setError('', null);
    const sent = body();
    // Esc or Cancel on a slow link leaves the request running: its answer is still told (below)
    const request = session.send();
    let label;
    try {
      ({ label } = await api('/labels', { method: 'POST', body: sent }));
    } catch (err) {
      const why = failedWhy(err, request.inDialog() ? 'press “Save label” again' : 'label it again');
      if (request.inDialog()) setError(`The label was NOT saved: ${why}`, 'save');
      else announce(`The label for ${sent.pumpId} (${KIND_TEXT[sent.kind]}) was NOT saved: ${why}`, { keep: true });
      return;
    } finally {
      request.done();
    }
    remember(label.author);
    await session.finish(request, () => {
      announce(savedText(label));
      return onSaved(label);
    });
  });

  return {
    /**
     * ctx: { pumpId, alert?: { seq, ts, score } (the episode's peak), range?: { from, to } (shown), sendRange? (sent
     * too: a range the agent's episode does not give), count?, label? (the current one), kind? };
     * focusBack: () => the element that gets focus when the dialog closes.
     * Without an alert the dialog records maintenance only: a verdict needs an alert.
     */
    open(next, focusBack = null) {
      ctx = next;
      session.opened(focusBack);
      form.reset();
      setError('', null);
      $('author').value = rememberedAuthor();
      $('label-h').textContent = ctx.alert ? 'Label alert' : 'Record maintenance';
      $('label-context').textContent = ctx.alert
        ? `Pump ${ctx.pumpId}, alert ${ctx.count > 1 ? `from ${fmtTime(ctx.range.from)} to ${fmtTime(ctx.range.to)} (${ctx.count.toLocaleString('en-US')} readings)` : `at ${fmtTime(ctx.alert.ts)}`}, peak score ${fmtNum(ctx.alert.score)}`
        : `Pump ${ctx.pumpId}: a time range during which its readings are not normal operation.`;
      // "the last hour until now" on the gateway's clock: the readings' times are the gateway's
      const now = gatewayNow();
      const at = ctx.range ? Date.parse(ctx.range.from) : ctx.alert ? Date.parse(ctx.alert.ts) : now - 3_600_000;
      $('range-from').value = localInput(at);
      $('range-to').value = localInput(Math.max(now, at));
      $('range-now').textContent = gatewayTimeText(now);
      const maintenanceOnly = !ctx.alert;
      $('verdicts').hidden = maintenanceOnly;
      for (const input of form.querySelectorAll('input[name=kind]')) input.disabled = maintenanceOnly && input.value !== 'maintenance';
      const kindNow = maintenanceOnly ? 'maintenance' : (ctx.kind ?? ctx.label?.kind);
      if (kindNow) form.querySelector(`input[name=kind][value="${kindNow}"]`).checked = true;
      if (ctx.label) {
        $('fault-type').value = ctx.label.faultType ?? '';
        $('note').value = ctx.label.note ?? '';
      }
      showFields();
      dialog.showModal();
      (maintenanceOnly ? $('range-from') : kindNow ? form.querySelector('input[name=kind]:checked') : form.elements.kind[0]).focus();
    },
  };
}
