import type { Agent } from '../main.js';
import type { Part } from './part.js';

/** The technician's page, alerts and labels (issue 6): routes and the parts it adds, in start order. */
export function wirePage(_agent: Agent): Part[] {
  return [];
}
