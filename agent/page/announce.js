// What a technician's change came to ("Label saved: …", "Label withdrawn: …"), said in a live
// region that stays in the page (#label-status, role=status): the dialog may be gone by then.

let timer = null;

/** A failure stays until the next announcement (`keep`): it is news the technician must not miss. */
export function announce(text, { keep = false } = {}) {
  const status = document.getElementById('label-status');
  clearTimeout(timer);
  status.textContent = text;
  if (!keep) timer = setTimeout(() => (status.textContent = ''), 10_000);
}
