// The withdraw dialog: a technician takes back a wrong label (the wrong pump, the wrong episode)
// with DELETE /labels/:id. Nothing is deleted: the withdrawal is stored with who and why, the
// trainer stops using the label, and the alert shows the label under it again, or none.
import { ApiError, api } from './api.js';
import { announce } from './announce.js';
import { dialogSession, failedWhy } from './dialog.js';
import { fmtTime, verdictText } from './format.js';
import { remember, rememberedAuthor } from './label-form.js';

const $ = (id) => document.getElementById(id);

/** "False alarm on pump-1, by Ben at 14:03:00": the label as the technician knows it. */
function labelWords(label) {
  const what = verdictText(label);
  return `${what} on ${label.pumpId}, by ${label.author} at ${fmtTime(label.createdAt)}`;
}

/**
 * What the page says when the label was gone before this withdrawal reached the agent: withdrawn
 * by someone else meanwhile (409, with their withdrawal), or no longer in the buffer (404).
 */
function goneText(err, label) {
  const w = err.body?.withdrawal;
  const why =
    err.code === 'PW_LABEL_WITHDRAWN'
      ? `was already withdrawn${w ? `, by ${w.author} at ${fmtTime(new Date(w.createdAt).toISOString())}` : ''}`
      : 'is no longer in the gateway’s buffer';
  return `The label ${labelWords(label)} ${why}: the alerts are shown again with the label now in force.`;
}

/** onWithdrawn() may return a promise (the page's refresh): focus goes back once it is done. */
export function initWithdrawForm({ onWithdrawn }) {
  const dialog = $('withdraw-dialog');
  const form = $('withdraw-form');
  const error = $('withdraw-error');
  const session = dialogSession(dialog, $('withdraw-confirm'), 'Withdrawing…');
  let ctx = null;

  form.addEventListener('input', () => {
    if (error.dataset.kind === 'validation') error.textContent = '';
  });
  $('withdraw-cancel').addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const author = $('withdraw-author').value.trim();
    if (!author) {
      error.textContent = 'Enter your name, so the withdrawal says who made it.';
      error.dataset.kind = 'validation';
      $('withdraw-author').focus();
      return;
    }
    error.textContent = '';
    const { label } = ctx;
    const note = $('withdraw-note').value.trim();
    // Esc or Cancel on a slow link leaves the request running: its answer is still told (below)
    const request = session.send();
    try {
      await api(`/labels/${encodeURIComponent(label.id)}`, { method: 'DELETE', body: note ? { author, note } : { author } });
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'PW_LABEL_WITHDRAWN' || err.code === 'PW_LABEL_NOT_FOUND')) {
        // someone withdrew it meanwhile (another technician, a CMMS through the API): the list is out of date
        request.done();
        await session.finish(request, () => {
          announce(goneText(err, label), { keep: true });
          return onWithdrawn();
        });
        return;
      }
      const why = failedWhy(err, request.inDialog() ? 'press “Withdraw label” again' : 'withdraw it again');
      if (request.inDialog()) {
        error.textContent = `The label was NOT withdrawn: ${why}`;
        error.dataset.kind = 'withdraw';
      } else announce(`The label ${labelWords(label)} was NOT withdrawn: ${why}`, { keep: true });
      return;
    } finally {
      request.done();
    }
    remember(author);
    await session.finish(request, () => {
      announce(`Label withdrawn: ${labelWords(label)}.`);
      return onWithdrawn();
    });
  });

  return {
    /**
     * ctx: { label (the one shown on the episode, with its `id`), when (the episode's time, as the
     * list says it: "14:02:10 – 14:03:00 (51 readings)") }; focusBack: () => the element that gets
     * focus when the dialog closes.
     */
    open(next, focusBack = null) {
      ctx = next;
      session.opened(focusBack);
      form.reset();
      error.textContent = '';
      error.dataset.kind = '';
      $('withdraw-author').value = rememberedAuthor();
      $('withdraw-context').textContent = `${labelWords(ctx.label)}${ctx.label.note ? ` — “${ctx.label.note}”` : ''}; on the alert of ${ctx.when}.`;
      dialog.showModal();
      $('withdraw-note').focus();
    },
  };
}
