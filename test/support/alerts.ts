import type { Alert, AlertPublisher } from '../../agent/edge/alerts.js';
import type { BufferStore } from '../../buffer/store.js';

/**
 * A kill between a send and the save of the pending list: a publisher restored from the buffer
 * sends one alert to edgeHub and fails the next (the process stopping); the list is then put back
 * as it was saved before (`savedBefore`, the kill kept the drain from saving it), and a publisher of
 * the next run restores it and sends the rest. Returns what each run sent.
 */
export async function sendOneThenRestart(
  publisher: (send: (a: Alert) => Promise<void>) => AlertPublisher,
  buffer: BufferStore,
  savedBefore: string,
): Promise<{ once: Alert[]; rest: Alert[]; after: AlertPublisher }> {
  const once: Alert[] = [];
  const stopping = publisher(async (a) => {
    if (once.length === 1) throw new Error('stopping');
    once.push(a);
  });
  stopping.restore();
  stopping.flush();
  await stopping.idle();
  buffer.setMeta('alerts.pending', savedBefore);
  const rest: Alert[] = [];
  const after = publisher(async (a) => void rest.push(a));
  after.restore();
  after.flush();
  await after.idle();
  return { once, rest, after };
}
