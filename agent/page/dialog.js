// What the label and withdraw dialogs share: the focus given back to the button that opened them
// (redrawn meanwhile), a submit button that says it is busy, and an answer told in the dialog only
// while it is still open for that request (Esc or Cancel on a slow link leaves the request running,
// and the page tells its outcome instead).
import { ApiError } from './api.js';

/** Why a request failed, in words; `again`: what to do once the connection is back. */
export function failedWhy(err, again) {
  return err instanceof ApiError && err.kind === 'unreachable'
    ? `the agent cannot be reached. Check this device’s connection to the gateway, then ${again}.`
    : (err?.message ?? 'unknown error');
}

/** `submit`: the dialog's submit button, which reads `busyText` while a request is on its way. */
export function dialogSession(dialog, submit, busyText) {
  const idleText = submit.textContent;
  /** () => the element to give focus back to (the page redraws the button that opened the dialog). */
  let opener = null;
  /** Counts the dialog's openings: an answer after its dialog closed (or was opened again) is told to the page, not the dialog. */
  let opening = 0;

  function setBusy(busy) {
    submit.disabled = busy;
    submit.textContent = busy ? busyText : idleText;
  }

  function focusOpener() {
    const target = opener?.();
    if (target?.isConnected) target.focus();
  }

  // Esc or Cancel: focus goes back to the button that opened the dialog, even if it was redrawn meanwhile
  dialog.addEventListener('close', () =>
    setTimeout(() => {
      if (!dialog.open && (document.activeElement === document.body || !document.activeElement)) focusOpener();
    }),
  );

  return {
    /** Called as the dialog opens; focusBack: () => the element that gets focus when it closes. */
    opened(focusBack) {
      opener = focusBack;
      opening += 1;
      setBusy(false);
    },
    /** A request is sent: `inDialog()` while its dialog is still open for it; `done()` once answered. */
    send() {
      const mine = opening;
      setBusy(true);
      return {
        inDialog: () => dialog.open && opening === mine,
        done: () => {
          if (opening === mine) setBusy(false);
        },
      };
    },
    /**
     * After an answer that ends the dialog: closes it (when still open for `request`), runs `then`
     * (the page's refresh, which may return a promise), and gives the focus back once it is done,
     * unless the technician closed the dialog meanwhile and moved on: the focus stays where they put it.
     */
    async finish(request, then) {
      const closedMeanwhile = !request.inDialog();
      if (!closedMeanwhile) dialog.close();
      try {
        await then();
      } finally {
        if (!closedMeanwhile) focusOpener();
      }
    },
  };
}
