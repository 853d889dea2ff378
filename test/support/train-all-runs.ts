/**
 * What the tests of train-all's outcome records and --resume share: the real `pumpwatch-trainer`
 * process (dist/trainer/cli.js) run against one Azurite container and its registry container
 * (`<name>-models`), and the blobs it leaves there read back.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { packageRoot } from '../../agent/paths.js';
import type { TestAzurite } from './azurite.js';

export const TRAINER = join(packageRoot(), 'dist', 'trainer', 'cli.js');

/** The trainer's environment for the readings container `name` and the registry `<name>-models`. */
export const trainerEnv = (az: TestAzurite, name: string) => ({
  PATH: process.env.PATH ?? '',
  PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
  PUMPWATCH_BLOB_CONTAINER: name,
  PUMPWATCH_MODELS_CONTAINER: `${name}-models`,
});

/** Runs `pumpwatch-trainer <args>` as a process on the containers of `name`, to its end. */
export function trainerProcess(az: TestAzurite, name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TRAINER, ...args], { env: trainerEnv(az, name), timeout: 180_000 }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

/** The names of the blobs under `prefix` (none when the container does not exist). */
export async function blobNames(c: ContainerClient, prefix: string): Promise<string[]> {
  const found: string[] = [];
  if (!(await c.exists())) return found;
  for await (const b of c.listBlobsFlat({ prefix })) found.push(b.name);
  return found;
}

export const readJsonBlob = async (c: ContainerClient, name: string): Promise<Record<string, unknown>> => JSON.parse((await c.getBlockBlobClient(name).downloadToBuffer()).toString('utf8')) as Record<string, unknown>;

/** The evaluation blobs of `source` (one per run that compared). */
export const evaluationBlobs = async (models: ContainerClient, source: string) => (await blobNames(models, `models/${source}/`)).filter((n) => n.includes('/evaluations/'));

/** The readings container `name`, created, and its registry container (created by the trainer). */
export async function runContainers(az: TestAzurite, name: string): Promise<{ data: ContainerClient; models: ContainerClient }> {
  const data = az.container(name);
  await data.create();
  return { data, models: az.container(`${name}-models`) };
}
