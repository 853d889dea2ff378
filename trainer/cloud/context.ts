/**
 * What the cloud commands need from outside: Blob Storage, the IoT Hub registry, the clock, and
 * whether stderr is a terminal. Built from environment variables by default; tests pass their
 * own (an Azurite container, a Registry attached to the local hub, a fixed clock).
 *
 *   PUMPWATCH_BLOB_CONNECTION_STRING (+ PUMPWATCH_BLOB_CONTAINER, default "pumpwatch": the
 *     gateways' uploads; PUMPWATCH_MODELS_CONTAINER, default "pumpwatch-models": the registry)
 *     or PUMPWATCH_BLOB_SAS_URL and PUMPWATCH_MODELS_SAS_URL (container SAS URLs of the two;
 *     `deploy` then cannot sign model URLs)
 *   PUMPWATCH_IOTHUB_CONNECTION_STRING: IoT Hub service connection string (deploy, rollback)
 *
 * The registry has a container of its own: every gateway holds a SAS that may write the uploads'
 * container (sp=rcw), so a registry beside the uploads could be rewritten from any gateway taken
 * apart in the field (model.onnx and the model.json holding its sha256 alike), and the next deploy
 * would push that model to the fleet. The trainer refuses the two being one container.
 */
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import iothub from 'azure-iothub';
import { safeErrorMessage } from '../../sync/redact.js';
import { plainHttpProblem } from '../../sync/plain-http.js';
import { CONTAINER_NAME, CONTAINER_NAME_RULE, containerSasUrlProblem } from '../../sync/sas-url.js';
import { TrainerError } from '../errors.js';
import { withOldLocation } from '../registry/old-location.js';

export const DEFAULT_CONTAINER = 'pumpwatch';
export const DEFAULT_MODELS_CONTAINER = 'pumpwatch-models';

/** The environment variables the trainer reads (above): a variable set with a name near one of them is warned about. */
export const TRAINER_ENV = [
  'PUMPWATCH_BLOB_CONNECTION_STRING',
  'PUMPWATCH_BLOB_SAS_URL',
  'PUMPWATCH_BLOB_CONTAINER',
  'PUMPWATCH_MODELS_CONTAINER',
  'PUMPWATCH_MODELS_SAS_URL',
  'PUMPWATCH_IOTHUB_CONNECTION_STRING',
] as const;

/** The two containers a training run reads and writes: the gateways' uploads (readings/, labels/) and the model registry (models/). */
export interface Stores {
  data: ContainerClient;
  models: ContainerClient;
}

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
  /** The gateways' uploads: readings/ and labels/. */
  container(): ContainerClient;
  /** The model registry (models/): a container of its own. */
  models(): ContainerClient;
  registry(): TwinRegistry;
  now(): Date;
  /** Draw a progress bar (stderr is a terminal) instead of plain log lines. */
  isTTY: boolean;
}

/**
 * The account of PUMPWATCH_BLOB_CONNECTION_STRING, its endpoint held to the agent's plain-http rule
 * (sync/plain-http.ts): http to Azure's public endpoint would send the signed requests and the
 * readings over the internet in clear.
 */
function serviceFromConnectionString(conn: string): BlobServiceClient {
  let service: BlobServiceClient;
  try {
    service = BlobServiceClient.fromConnectionString(conn);
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `the Blob Storage settings are not usable: ${safeErrorMessage(err).split('\n')[0]}`, { cause: err });
  }
  const insecure = plainHttpProblem(new URL(service.url));
  if (insecure !== null) throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_BLOB_CONNECTION_STRING is not usable: ${insecure}`);
  return service;
}

export function containerFromEnv(env: CommandContext['env']): ContainerClient {
  const sas = env.PUMPWATCH_BLOB_SAS_URL;
  const conn = env.PUMPWATCH_BLOB_CONNECTION_STRING;
  // The agent's own check (agent/config.ts): an account SAS URL would name container "undefined".
  const sasProblem = !conn && sas ? containerSasUrlProblem(sas) : null;
  if (sasProblem !== null) throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_BLOB_SAS_URL is not usable: ${sasProblem}`);
  if (conn) return serviceFromConnectionString(conn).getContainerClient(env.PUMPWATCH_BLOB_CONTAINER || DEFAULT_CONTAINER);
  try {
    if (sas) return new ContainerClient(sas);
  } catch (err) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `the Blob Storage settings are not usable: ${safeErrorMessage(err).split('\n')[0]}`, { cause: err });
  }
  throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', 'Blob Storage is not configured: set PUMPWATCH_BLOB_CONNECTION_STRING (and PUMPWATCH_BLOB_CONTAINER) or PUMPWATCH_BLOB_SAS_URL');
}

/** The registry's container: PUMPWATCH_MODELS_CONTAINER (or its default) of the connection string's account, or PUMPWATCH_MODELS_SAS_URL. */
export function modelsFromEnv(env: CommandContext['env']): ContainerClient {
  const conn = env.PUMPWATCH_BLOB_CONNECTION_STRING;
  const sas = env.PUMPWATCH_MODELS_SAS_URL;
  const own = 'the model registry needs a container of its own, which the SAS the gateways hold for their uploads cannot reach';
  if (conn) {
    const name = env.PUMPWATCH_MODELS_CONTAINER || DEFAULT_MODELS_CONTAINER;
    const data = env.PUMPWATCH_BLOB_CONTAINER || DEFAULT_CONTAINER;
    // Blob Storage's rule for a container's name, told before any request (it answered 400 OutOfRangeInput)
    if (!CONTAINER_NAME.test(name)) {
      throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_MODELS_CONTAINER "${name.slice(0, 63)}" is not a container name: ${CONTAINER_NAME_RULE}`);
    }
    if (name === data) {
      const which = env.PUMPWATCH_MODELS_CONTAINER ? 'PUMPWATCH_MODELS_CONTAINER names' : `the registry's default container "${DEFAULT_MODELS_CONTAINER}" is`;
      throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `${which} the uploads' container "${data}" (PUMPWATCH_BLOB_CONTAINER): ${own}`);
    }
    return serviceFromConnectionString(conn).getContainerClient(name);
  }
  if (!sas) {
    throw new TrainerError(
      'PW_TRAINER_NOT_CONFIGURED',
      `the model registry is not configured: set PUMPWATCH_BLOB_CONNECTION_STRING (the registry is then container "${DEFAULT_MODELS_CONTAINER}", or PUMPWATCH_MODELS_CONTAINER) or PUMPWATCH_MODELS_SAS_URL`,
    );
  }
  const problem = containerSasUrlProblem(sas);
  if (problem !== null) throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_MODELS_SAS_URL is not usable: ${problem}`);
  const models = new ContainerClient(sas);
  const data = env.PUMPWATCH_BLOB_SAS_URL ? new ContainerClient(env.PUMPWATCH_BLOB_SAS_URL) : null;
  if (data !== null && data.url.split('?')[0] === models.url.split('?')[0]) {
    throw new TrainerError('PW_TRAINER_NOT_CONFIGURED', `PUMPWATCH_MODELS_SAS_URL and PUMPWATCH_BLOB_SAS_URL name the same container: ${own}`);
  }
  return models;
}

/** The uploads' container, or null when its settings are missing or unusable (the command that needs it says so itself). */
function uploadsIfConfigured(env: CommandContext['env']): ContainerClient | null {
  try {
    return containerFromEnv(env);
  } catch {
    return null;
  }
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
  let models: ContainerClient | undefined;
  let registry: TwinRegistry | undefined;
  return {
    env,
    container: () => (container ??= containerFromEnv(env)),
    // The uploads' container, where a registry not moved yet is found (registry/old-location.ts); none where it is not configured.
    models: () => (models ??= withOldLocation(modelsFromEnv(env), () => uploadsIfConfigured(env))),
    registry: () => (registry ??= registryFromEnv(env)),
    now: () => new Date(),
    isTTY: process.stderr.isTTY === true,
  };
}
