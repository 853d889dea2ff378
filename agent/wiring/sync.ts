import type { Agent } from '../main.js';
import type { Part } from './part.js';

/** Store-and-forward to Blob Storage (issue 3): the parts it adds to the agent, in start order. */
export function wireSync(_agent: Agent): Part[] {
  return [];
}
