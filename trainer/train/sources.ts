/**
 * The sources (pumps) that have readings in Blob Storage, and the share of them one shard
 * trains. A source belongs to shard (the first 4 bytes of sha256(source), read as a big-endian
 * uint32) mod n, so adding a pump never moves the others between shards, and every pod of an
 * Indexed Job computes the same split without coordination.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { watchedPages } from '../../sync/deadline.js';
import { PUMP_ID_PATTERN, READINGS_ROOT, segment } from '../../sync/layout.js';
import { idleLimitOf } from '../cloud/blob-limits.js';

/** The names of the folders right under `prefix` (which ends in "/"), as stored; each page of the listing under the idle limit. */
async function childFolders(container: ContainerClient, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const pages = watchedPages(`listing ${prefix}`, { idleMs: idleLimitOf(container) }, (abortSignal) => container.listBlobsByHierarchy('/', { prefix, abortSignal }).byPage());
  for await (const page of pages) {
    for (const folder of page.segment.blobPrefixes ?? []) out.push(folder.name.slice(prefix.length).replace(/\/$/, ''));
  }
  return out;
}

/**
 * The sources with a folder under readings/, and the folders that cannot be one (`unreadable`,
 * as `readings/<name>/`): a name that is not valid percent-encoding (`tmp%`), or that the agent
 * would not have written for the id it decodes to (`segment` of it is another name, so its
 * readings would be looked for elsewhere). Such a folder, dropped there by hand or by a tool,
 * is left out rather than failing every shard.
 */
export async function listSources(container: ContainerClient): Promise<{ sources: string[]; unreadable: string[] }> {
  const sources: string[] = [];
  const unreadable: string[] = [];
  for (const name of await childFolders(container, READINGS_ROOT)) {
    const source = sourceOf(name);
    if (source === null) unreadable.push(`${READINGS_ROOT}${name}/`);
    else sources.push(source);
  }
  return { sources: sources.sort(), unreadable: unreadable.sort() };
}

/**
 * The source id a readings folder stands for, or null when the agent cannot have written it: the
 * agent takes only pump ids by PUMP_ID_PATTERN, and `train --source` refuses others; a folder such
 * as `readings/pump.7/` (written by a tool) was trained, and its deploy wrote the twin key
 * `models.pump.7`, which IoT Hub refuses.
 */
function sourceOf(name: string): string | null {
  try {
    const source = decodeURIComponent(name);
    return segment(source) === name && PUMP_ID_PATTERN.test(source) ? source : null;
  } catch {
    // URIError (not percent-encoding) or SyncError (".", "..", empty): not a source folder.
    return null;
  }
}

/**
 * 00:00 UTC of the newest day folder of the source's readings (`readings/{pump}/{yyyy}/{mm}/{dd}/`,
 * the day of each blob's first reading); null when it has none. Three small listings.
 */
export async function newestReadingsDay(container: ContainerClient, source: string): Promise<number | null> {
  let prefix = `${READINGS_ROOT}${segment(source)}/`;
  const parts: number[] = [];
  for (const digits of [4, 2, 2]) {
    let newest: string | undefined;
    for (const name of await childFolders(container, prefix)) {
      if (name.length === digits && /^\d+$/.test(name) && (newest === undefined || name > newest)) newest = name;
    }
    if (newest === undefined) return null;
    parts.push(Number(newest));
    prefix = `${prefix}${newest}/`;
  }
  const [year, month, day] = parts as [number, number, number];
  return Date.UTC(year, month - 1, day);
}

export function shardOf(source: string, shards: number): number {
  return createHash('sha256').update(source).digest().readUInt32BE(0) % shards;
}

export function inShard(sources: readonly string[], index: number, shards: number): string[] {
  return sources.filter((s) => shardOf(s, shards) === index);
}

/** Maps with at most `limit` calls in flight; results in input order (the sync reader's). */
export { mapLimited } from '../../sync/reader.js';
