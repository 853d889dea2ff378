/**
 * What the cloud commands need from outside: Blob Storage, the IoT Hub registry, the clock, and
 * whether stderr is a terminal. Built from environment variables by default; tests pass their
 * own (an Azurite container, a Registry attached to the local hub, a fixed clock).
 *
 *   PUMPWATCH_BLOB_CONNECTION_STRING (+ PUMPWATCH_BLOB_CONTAINER, default "pumpwatch")
 *     or PUMPWATCH_BLOB_SAS_URL (a container SAS URL; `deploy` then cannot sign model URLs)
 *   PUMPWATCH_IOTHUB_CONNECTION_STRING: IoT Hub service connection string (deploy, rollback)
 */
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import iothub from 'azure-iothub';
import { safeErrorMessage } from '../../sync/redact.js';
import { containerSasUrlProblem } from '../../sync/sas-url.js';
import { TrainerError } from '../errors.js';

export const DEFAULT_CONTAINER = 'pumpwatch';

/** The environment variables the trainer reads (above): a variable set with a name near one of them is warned about. */
export const TRAINER_ENV = ['PUMPWATCH_BLOB_CONNECTION_STRING', 'PUMPWATCH_BLOB_SAS_URL', 'PUMPWATCH_BLOB_CONTAINER', 'PUMPWATCH_IOTHUB_CONNECTION_STRING'] as const;

/** The part of azure-iothub's Registry the trainer uses (the real Registry satisfies it). */
export interface TwinRegistry {
  getModuleTwin(deviceId: string, moduleId: string): Promise<{ responseBody: TwinDocument }>;
  updateModuleTwin(deviceId: string, moduleId: string, patch: object, etag: string): Promise<{ responseBody: TwinDocument }>;
  createQuery(sql: string, pageSize?: number): { hasMoreResults: boolean; nextAsTwin(): Promise<{ result: TwinDocument[] }> };
}

export interface TwinDocument {
  deviceId: string;
  moduleId?: string;
  etag: string;
  properties?: { desired?: Record<string, unknown>; reported?: Record<string, unknown> };
}

export interface CommandContext {
  env: Readonly<Record<string, string | undefined>>;
  container(): ContainerClient;
  registry(): TwinRegistry;
  now(): Date;
  /** Draw a progress bar (stderr is a terminal) instead of plain log lines. */
  isTTY: boolean;
}

export function containerFromEnv(env: CommandContext['env']): ContainerClient {
  const sas = env.PUMPWATCH_BLOB_SAS_URL;
  const conn = env.PUMPWATCH_BLOB_CONNECTION_STRING;
  // The agent's own check (agent/config.ts): an account SAS URL would name container "undefined".
  const sasProblem = !conn && sas ? containerSasUrlProblem(sas) : null;
  if (sasProblem !== null) throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_BLOB_SAS_URL is not usable: ${sasProblem}`);
  try {
    if (conn) return BlobServiceClient.fromConnectionString(conn).getContainerClient(env.PUMPWATCH_BLOB_CONTAINER || DEFAULT_CONTAINER);
    if (sas) return new ContainerClient(sas);
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `the Blob Storage settings are not usable: ${safeErrorMessage(err).split('\n')[0]}`, { cause: err });
  }
  throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', 'Blob Storage is not configured: set PUMPWATCH_BLOB_CONNECTION_STRING (and PUMPWATCH_BLOB_CONTAINER) or PUMPWATCH_BLOB_SAS_URL');
}

export function registryFromEnv(env: CommandContext['env']): TwinRegistry {
  const conn = env.PUMPWATCH_IOTHUB_CONNECTION_STRING;
  if (!conn) throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', 'IoT Hub is not configured: set PUMPWATCH_IOTHUB_CONNECTION_STRING (a service connection string)');
  try {
    return iothub.Registry.fromConnectionString(conn) as unknown as TwinRegistry;
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_IOTHUB_CONNECTION_STRING is not usable: ${safeErrorMessage(err)}`, { cause: err });
  }
}

/** The context of a real CLI run: clients made on first use from the environment. */
export function defaultContext(env: CommandContext['env'] = process.env): CommandContext {
  let container: ContainerClient | undefined;
  let registry: TwinRegistry | undefined;
  return {
    env,
    container: () => (container ??= containerFromEnv(env)),
    registry: () => (registry ??= registryFromEnv(env)),
    now: () => new Date(),
    isTTY: process.stderr.isTTY === true,
  };
}
