/**
 * Where the module client comes from: inside IoT Edge the SDK's fromEnvironment (IOTEDGE_* or
 * EdgeHubConnectionString); otherwise a module connection string (GatewayHostName reaches a
 * gateway or the local hub) with the CA to trust. The standalone demo starts the local hub.
 */
import { readFile } from 'node:fs/promises';
import device from 'azure-iot-device';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ModuleClient } from './connection.js';
import type { TransportCtor } from './transport.js';

export type ClientSource =
  | { kind: 'environment' }
  | { kind: 'connection-string'; connectionString: string; ca: string | null };

export class EdgeClientError extends Error {
  constructor(
    readonly code: 'PW_EDGE_CA_UNREADABLE',
    message: string,
  ) {
    super(message);
    this.name = 'EdgeClientError';
  }
}

/** The configured source, or null when the agent runs without IoT Edge. */
export async function configuredSource(config: Config): Promise<ClientSource | null> {
  if (config.hub === 'off' || !config.edge) return null;
  if (!config.moduleConnectionString) return { kind: 'environment' };
  let ca: string | null = null;
  if (config.moduleCaFile) {
    try {
      ca = await readFile(config.moduleCaFile, 'utf8');
    } catch (err) {
      throw new EdgeClientError('PW_EDGE_CA_UNREADABLE', `cannot read the hub CA certificate ${config.moduleCaFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { kind: 'connection-string', connectionString: config.moduleConnectionString, ca };
}

export async function createModuleClient(source: ClientSource, transport: TransportCtor): Promise<ModuleClient> {
  if (source.kind === 'environment') return device.ModuleClient.fromEnvironment(transport as never);
  const client = device.ModuleClient.fromConnectionString(source.connectionString, transport as never);
  if (source.ca) await client.setOptions({ ca: source.ca });
  return client;
}

export interface LocalHubHandle {
  source: ClientSource;
  port: number;
  stop: () => Promise<void>;
}

/**
 * The local hub of the standalone demo (agent/local-hub; aedes and selfsigned are
 * devDependencies). Null when they are not installed, as in the container.
 */
export async function startLocalHub(deviceId: string, moduleId: string, logger: Logger): Promise<LocalHubHandle | null> {
  let mod: typeof import('../local-hub/index.js');
  try {
    mod = await import('../local-hub/index.js');
  } catch (err) {
    logger.info({ reason: (err as Error).message.split('\n')[0] }, 'local IoT hub not available (development dependencies not installed): running without a hub');
    return null;
  }
  const hub = await mod.LocalHub.start();
  const connectionString = hub.addModule(deviceId, moduleId);
  logger.info({ port: hub.mqttPort, deviceId, moduleId }, `local IoT hub (development) listening on mqtts://127.0.0.1:${hub.mqttPort}`);
  return { source: { kind: 'connection-string', connectionString, ca: hub.ca }, port: hub.mqttPort, stop: () => hub.stop() };
}
