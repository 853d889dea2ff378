// The label dialog: a technician's verdict on an alert (confirmed fault with its type, false
// alarm) or a maintenance window during which a pump's readings are not normal operation.
import { api } from './api.js';
import { fmtNum, fmtTime } from './format.js';

const AUTHOR_KEY = 'pumpwatch.author';
const $ = (id) => document.getElementById(id);

/** `yyyy-mm-ddThh:mm` in local time, as a datetime-local input wants it. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

function rememberedAuthor() {
  try {
    return localStorage.getItem(AUTHOR_KEY) ?? '';
  } catch {
    return '';
  }
}

function remember(author) {
  try {
    localStorage.setItem(AUTHOR_KEY, author);
  } catch {
    // not remembered: asked again next time
  }
}

export function initLabelForm({ onSaved }) {
  const dialog = $('label-dialog');
  const form = $('label-form');
  const error = $('label-error');
  let ctx = null;

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
      const from = Date.parse($('range-from').value);
      const to = Date.parse($('range-to').value);
      if (!Number.isFinite(from) || !Number.isFinite(to)) return ['Enter when the maintenance started and ended.', $('range-from')];
      if (to < from) return ['The maintenance end is before its start.', $('range-to')];
    }
    if (!$('author').value.trim()) return ['Enter your name, so the label says who made it.', $('author')];
    return null;
  }

  function body() {
    const k = kind();
    const b = { pumpId: ctx.pumpId, kind: k, author: $('author').value.trim(), note: $('note').value.trim() || null };
    if (ctx.alert) b.alertSeq = ctx.alert.seq;
    if (ctx.range) Object.assign(b, ctx.range); // a verdict on the whole episode
    if (k === 'confirmed-fault') b.faultType = $('fault-type').value;
    if (k === 'maintenance') {
      b.from = new Date($('range-from').value).toISOString();
      b.to = new Date($('range-to').value).toISOString();
    }
    return b;
  }

  form.addEventListener('change', showFields);
  $('label-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const problem = validate();
    if (problem) {
      error.textContent = problem[0];
      problem[1].focus();
      return;
    }
    error.textContent = '';
    const save = $('label-save');
    save.disabled = true;
    try {
      const { label } = await api('/labels', { method: 'POST', body: body() });
      remember(label.author);
      dialog.close();
      onSaved(label);
    } catch (err) {
      error.textContent = `The label was not saved. ${err.message}`;
    } finally {
      save.disabled = false;
    }
  });

  return {
    /** ctx: { pumpId, alert?: { seq, ts, score } (the episode's peak), range?: { from, to }, count?, label? (the current one), kind? } */
    open(next) {
      ctx = next;
      form.reset();
      error.textContent = '';
      $('author').value = rememberedAuthor();
      $('label-h').textContent = ctx.alert ? 'Label alert' : 'Record maintenance';
      $('label-context').textContent = ctx.alert
        ? `Pump ${ctx.pumpId}, alert ${ctx.count > 1 ? `from ${fmtTime(ctx.range.from)} to ${fmtTime(ctx.range.to)} (${ctx.count} readings)` : `at ${fmtTime(ctx.alert.ts)}`}, peak score ${fmtNum(ctx.alert.score)}`
        : `Pump ${ctx.pumpId}: a time range during which its readings are not normal operation.`;
      const at = ctx.range ? Date.parse(ctx.range.from) : ctx.alert ? Date.parse(ctx.alert.ts) : Date.now() - 3_600_000;
      $('range-from').value = localInput(at);
      $('range-to').value = localInput(Math.max(Date.now(), at));
      const kindNow = ctx.kind ?? ctx.label?.kind;
      if (kindNow) form.querySelector(`input[name=kind][value="${kindNow}"]`).checked = true;
      if (ctx.label) {
        $('fault-type').value = ctx.label.faultType ?? '';
        $('note').value = ctx.label.note ?? '';
      }
      showFields();
      dialog.showModal();
      (kindNow ? form.querySelector('input[name=kind]:checked') : form.elements.kind[0]).focus();
    },
  };
}
