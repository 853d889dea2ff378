/**
 * The sources (pumps) that have readings in Blob Storage, and the share of them one shard
 * trains. A source belongs to shard hash(source) mod n, so adding a pump never moves the others
 * between shards, and every pod of an Indexed Job computes the same split without coordination.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { READINGS_ROOT } from '../../sync/layout.js';

export async function listSources(container: ContainerClient): Promise<string[]> {
  const out: string[] = [];
  for await (const item of container.listBlobsByHierarchy('/', { prefix: READINGS_ROOT })) {
    if (item.kind === 'prefix') out.push(decodeURIComponent(item.name.slice(READINGS_ROOT.length).replace(/\/$/, '')));
  }
  return out.sort();
}

export function shardOf(source: string, shards: number): number {
  return createHash('sha256').update(source).digest().readUInt32BE(0) % shards;
}

export function inShard(sources: readonly string[], index: number, shards: number): string[] {
  return sources.filter((s) => shardOf(s, shards) === index);
}

/** Maps with at most `limit` calls in flight; results in input order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
