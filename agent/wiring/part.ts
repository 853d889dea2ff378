import type { BufferStore } from '../../buffer/store.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { ModelStore } from '../../inference/model-store.js';
import type { ModelManager } from '../../inference/models.js';
import type { Config } from '../config.js';
import type { StatusServer } from '../http/server.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';
import type { AgentMetrics, MetricsRegistry } from '../metrics.js';
import type { Scheduler } from '../scheduler.js';
import type { AgentStatus } from '../status.js';
import type { FirstModelStates } from '../first-model/state.js';

/** A part of the agent with an ordered start and a reverse-ordered stop (see agent/main.ts). */
export interface Part {
  name: string;
  start: () => Promise<void> | void;
  stop: () => Promise<void> | void;
}

/** Stops each step in turn, each in its own try/catch: one that throws never keeps the next from stopping. */
export async function stopEach(steps: ReadonlyArray<Pick<Part, 'name' | 'stop'>>, failed: (name: string, err: unknown) => void): Promise<void> {
  for (const step of steps) {
    try {
      await step.stop();
    } catch (err) {
      failed(step.name, err);
    }
  }
}

/**
 * What a feature's wiring may use of the agent: the parts the composition root built. The Agent
 * class satisfies it; wiring depends on this interface, not on main.ts (no import cycle).
 */
export interface AgentParts {
  readonly config: Config;
  readonly logger: Logger;
  /** The monotonic clock the page's pump board uses (tests move it); undefined: performance.now. */
  readonly monotonic: (() => number) | undefined;
  readonly registry: MetricsRegistry;
  readonly metrics: AgentMetrics;
  readonly buffer: BufferStore;
  readonly engine: InferenceEngine;
  readonly pipeline: IngestPipeline;
  readonly models: ModelManager;
  readonly modelStore: ModelStore;
  /** The first models fitted on the gateway, per pump (agent/first-model/state.ts). */
  readonly firstModels: FirstModelStates;
  readonly scheduler: Scheduler;
  readonly status: AgentStatus;
  readonly server: StatusServer;
}
