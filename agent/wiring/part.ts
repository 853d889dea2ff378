/** A part of the agent with an ordered start and a reverse-ordered stop (see agent/main.ts). */
export interface Part {
  name: string;
  start: () => Promise<void> | void;
  stop: () => Promise<void> | void;
}
