import type { Agent } from '../main.js';
import type { Part } from './part.js';

/** IoT Edge: module client, twin, model hot-swap, alerts (issue 4): the parts it adds, in start order. */
export function wireEdge(_agent: Agent): Part[] {
  return [];
}
