import type { EdgeRuntime, EdgeRuntimeOptions } from '../edge/runtime.js';
import type { AgentParts as Agent, Part } from './part.js';

/** The runtime of each agent once its edge part started, for tests and tools that need to drive it. */
const runtimes = new WeakMap<Agent, EdgeRuntime>();

export function edgeRuntimeOf(agent: Agent): EdgeRuntime | undefined {
  return runtimes.get(agent);
}

/**
 * IoT Edge: module client, twin, model hot-swap, alerts (issue 4): the parts it adds, in start order.
 * The runtime and the IoT SDK under it (azure-iot-device, its MQTT transport) are imported when the
 * part starts, so an agent with the hub off never loads them: 5 MB of RSS at peak, 8 MB idle, in
 * bench/ingest (it runs with the hub off).
 */
export function wireEdge(agent: Agent, opts: EdgeRuntimeOptions = {}): Part[] {
  if (agent.config.hub === 'off') return [];
  let edge: EdgeRuntime | null = null;
  return [
    {
      name: 'edge',
      start: async () => {
        const { EdgeRuntime } = await import('../edge/runtime.js');
        edge = new EdgeRuntime(agent, opts);
        runtimes.set(agent, edge);
        showHubInStatus(agent, edge);
        await edge.start();
      },
      stop: () => edge?.stop(),
    },
  ];
}

/**
 * Adds `connectivity.hub` to /status, keeping whatever reports `blob` (the sync part sets its
 * function first).
 */
function showHubInStatus(agent: Agent, edge: EdgeRuntime): void {
  agent.status.setConnectivity('hub', () => edge.hubStatus());
}
