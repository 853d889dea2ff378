import { EdgeRuntime, type EdgeRuntimeOptions } from '../edge/runtime.js';
import type { AgentParts as Agent, Part } from './part.js';

/** The runtime of each agent, for tests and tools that need to drive it. */
const runtimes = new WeakMap<Agent, EdgeRuntime>();

export function edgeRuntimeOf(agent: Agent): EdgeRuntime | undefined {
  return runtimes.get(agent);
}

/** IoT Edge: module client, twin, model hot-swap, alerts (issue 4): the parts it adds, in start order. */
export function wireEdge(agent: Agent, opts: EdgeRuntimeOptions = {}): Part[] {
  if (agent.config.hub === 'off') return [];
  const edge = new EdgeRuntime(agent, opts);
  runtimes.set(agent, edge);
  return [
    {
      name: 'edge',
      start: async () => {
        showHubInStatus(agent, edge);
        await edge.start();
      },
      stop: () => edge.stop(),
    },
  ];
}

/**
 * Adds `connectivity.hub` to /status, keeping whatever reports `blob` (the sync part sets its
 * function first). AgentStatus has no getter for it yet, hence the reflective read.
 */
function showHubInStatus(agent: Agent, edge: EdgeRuntime): void {
  agent.status.setConnectivity('hub', () => edge.hubStatus());
}
