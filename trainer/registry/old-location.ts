/**
 * The registry's place before 2026-12-07: `models/` in the uploads' container (trainer/README.md,
 * "Environment"). A trainer of today pointed at a fleet whose registry was not moved yet found no
 * best.json, took every source for a new one and promoted without comparison, and the move run
 * afterwards would have overwritten its best.json. So where the registry holds no best.json for a
 * source, the old place is asked once (one HEAD) and a best.json there stops the command with
 * PW_TRAINER_REGISTRY_MOVED and the move to run.
 *
 * The uploads' container is kept with the registry's client (as blob-limits.ts keeps the idle
 * limit), so the one reader of best.json (read.ts readBest) needs no new argument in every command.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { bestModelBlobName } from '../../sync/layout.js';
import { TrainerError } from '../errors.js';
import { registryError, statusOf } from './storage.js';
import { watched } from '../../sync/deadline.js';
import { idleLimitOf } from '../cloud/blob-limits.js';

/** The uploads' container of a registry client, or null where it is not configured (a deploy given only PUMPWATCH_MODELS_SAS_URL). */
const uploadsOf = new WeakMap<ContainerClient, () => ContainerClient | null>();

/** `models`, its old registry looked for in the container `uploads()` gives (called at the first look, so a command that never misses a best.json never needs it). */
export function withOldLocation(models: ContainerClient, uploads: () => ContainerClient | null): ContainerClient {
  uploadsOf.set(models, uploads);
  return models;
}

const withoutQuery = (url: string): string => url.split('?')[0] ?? url;

/** The move of trainer/README.md, with this fleet's containers (their URLs without any SAS). */
export function moveCommand(uploads: ContainerClient, models: ContainerClient): string {
  return `azcopy copy '${withoutQuery(uploads.url)}/models?SAS' '${withoutQuery(models.url)}?SAS' --recursive`;
}

/**
 * Throws PW_TRAINER_REGISTRY_MOVED when `models` has no best.json for `source` (the caller found
 * none) but the uploads' container holds one under the same name. Nothing when the uploads'
 * container is not known, or is the registry itself (tests that hand one container for both).
 */
export async function refuseUnmovedRegistry(models: ContainerClient, source: string): Promise<void> {
  const uploads = uploadsOf.get(models)?.() ?? null;
  if (uploads === null || withoutQuery(uploads.url) === withoutQuery(models.url)) return;
  const name = bestModelBlobName(source);
  let there: boolean;
  try {
    there = await watched(`looking for ${name} in the uploads' container "${uploads.containerName}"`, { idleMs: idleLimitOf(models) }, (w) =>
      uploads.getBlockBlobClient(name).exists({ abortSignal: w.signal }),
    );
  } catch (err) {
    // exists() answers false on 404; a container that is gone answers 404 too
    if (statusOf(err) === 404) return;
    throw registryError(`looking for ${name} in the uploads' container "${uploads.containerName}"`, err);
  }
  if (!there) return;
  throw new TrainerError(
    'PW_TRAINER_REGISTRY_MOVED',
    `the registry (container "${models.containerName}") holds no ${name}, but the uploads' container "${uploads.containerName}" does: ` +
      `the registry was there before 2026-12-07 and has not been moved. Nothing is compared, promoted, deployed or rolled back until it is: move it with ` +
      `${moveCommand(uploads, models)} (the blob names stay models/…), then run pumpwatch-trainer refresh-urls, and only then delete models/ from "${uploads.containerName}" (trainer/README.md, "Environment")`,
  );
}
