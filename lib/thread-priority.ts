/**
 * Background work on a worker thread (sync's encoder, the agent's first-model fit) asks for a
 * lower CPU priority on Linux (nice 10 by default; raising niceness needs no privilege), so on a
 * busy gateway live scoring on the main thread runs first. Elsewhere, or if refused, the thread
 * runs at normal priority. Call it on the thread itself.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

export function lowerThreadPriority(niceness = 10): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, niceness);
  } catch {
    // not Linux, or not permitted: normal priority
  }
}
