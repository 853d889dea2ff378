/**
 * Pointing azure-iothub's Registry at a LocalHub.
 *
 * The Registry builds `https://{HostName}/…` requests through azure-iot-http-base, with its own
 * `https.Agent({ keepAlive: true })` and no public option for a CA or a port: HostName
 * `localhost:<port>` is taken as a DNS name, and Node 20 cannot add a CA at run time
 * (NODE_EXTRA_CA_CERTS is read at process start only). What works: replace the Registry's HTTP
 * options with an agent that connects to the hub's loopback port and trusts its CA. That reaches
 * into the SDK's private `_restApiClient.setOptions` (azure-iothub 1.16); if a later SDK drops it,
 * attachRegistry fails loudly with PW_LOCALHUB_REGISTRY_UNSUPPORTED instead of calling the internet.
 */
import type https from 'node:https';
import { LocalHubError } from './errors.js';

interface RestClientLike {
  setOptions?: (options: { http: { agent: https.Agent } }) => void;
}

/** Routes every request of `registry` to the hub behind `agent` (LocalHub.registryAgent()); returns it. */
export function attachRegistry<T extends object>(registry: T, agent: https.Agent): T {
  const rest = (registry as { _restApiClient?: RestClientLike })._restApiClient;
  if (typeof rest?.setOptions !== 'function') {
    throw new LocalHubError(
      'PW_LOCALHUB_REGISTRY_UNSUPPORTED',
      'this azure-iothub Registry has no _restApiClient.setOptions: cannot route it to the local hub',
    );
  }
  rest.setOptions({ http: { agent } });
  return registry;
}
