/**
 * How long a request of the trainer to Blob Storage may go without a byte moving before it is
 * given up (sync/deadline.ts, the agent's limits): every listing, download and registry write of
 * a run. The SDK's own timeout only asks the server (`?timeout=`): a connection that stays up
 * while answers stop held a pod for good, its shard never finishing nor reporting. The limit is
 * kept with the container client the run uses (DEFAULT_IDLE_MS, 60 s, unless set here); tests
 * set a short one.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { DEFAULT_IDLE_MS } from '../../sync/deadline.js';

const limits = new WeakMap<ContainerClient, number>();

/** `container`, its requests given up after `idleMs` without a byte moving. */
export function withIdleLimit(container: ContainerClient, idleMs: number): ContainerClient {
  limits.set(container, idleMs);
  return container;
}

/** The idle limit of the requests sent through `container`. */
export function idleLimitOf(container: ContainerClient): number {
  return limits.get(container) ?? DEFAULT_IDLE_MS;
}
