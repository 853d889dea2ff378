/**
 * The local IoT hub for tests (agent/local-hub), plus helpers to drive it with the real module
 * client: azure-iot-device's ModuleClient over azure-iot-device-mqtt.
 */
import device from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import type { LocalHub } from '../../agent/local-hub/index.js';
import { modelReads } from '../../inference/contract.js';

export * from '../../agent/local-hub/index.js';

export type ModuleClient = InstanceType<typeof device.ModuleClient>;

/** A real ModuleClient for a connection string from LocalHub.addModule, trusting the hub's CA (not opened). */
export async function moduleClient(hub: LocalHub, connectionString: string): Promise<ModuleClient> {
  const client = device.ModuleClient.fromConnectionString(connectionString, Mqtt);
  await client.setOptions({ ca: hub.ca });
  return client;
}

/**
 * Opens a client, retrying while the broker is not listening. The SDK reports a refused first
 * connection as `UnauthorizedError: Failure on first connection (Not authorized): connect ECONNREFUSED`,
 * so only that shape is retried; a genuine refusal (bad key) fails at once.
 */
export async function openWithRetry(client: ModuleClient, attempts = 40, delayMs = 250): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await client.open();
      return;
    } catch (err) {
      const message = String((err as Error).message);
      if (attempt >= attempts || !/ECONNREFUSED|ECONNRESET/.test(message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Opens a real ModuleClient on the hub and returns it; close it before stopping the hub. */
export async function connectModule(hub: LocalHub, connectionString: string): Promise<ModuleClient> {
  const client = await moduleClient(hub, connectionString);
  await openWithRetry(client);
  return client;
}

export { device };

/**
 * Adds a module whose twin reports what this build's agent reads (`state.modelContracts`,
 * `state.modelRules`), as a running agent of it does: `deploy` sends such a module every model the
 * trainer makes. A bare addModule is an agent from before that report, which reads contract 1 only.
 */
export function addAgentModule(hub: LocalHub, deviceId: string, moduleId: string): string {
  const connectionString = hub.addModule(deviceId, moduleId);
  hub.updateReported(deviceId, moduleId, { state: modelReads() });
  return connectionString;
}
