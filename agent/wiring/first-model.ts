import { FirstModelJob } from '../first-model/job.js';
import { createModelUpdater } from '../edge/model-updates.js';
import { GATEWAY_ORIGIN, type ModelUpdater } from '../../inference/updater.js';
import { edgeRuntimeOf } from './edge.js';
import type { AgentParts as Agent, Part } from './part.js';

/** The check's cron pattern: every 10 minutes. */
export const FIRST_MODEL_CHECK = '0 */10 * * * *';
/** The first check after start: shortly, once the twin had a moment to be read. */
export const FIRST_MODEL_FIRST_CHECK_MS = 10_000;

export interface FirstModelWiringOptions {
  /** The check's cron pattern (default every 10 minutes; tests: every few seconds). */
  checkPattern?: string;
  /** The first check after start (default FIRST_MODEL_FIRST_CHECK_MS). */
  firstCheckMs?: number;
}

/** The job of each agent once its part started, and the model updater it hands its models to, for tests that drive them. */
const parts = new WeakMap<Agent, { job: FirstModelJob; updater: ModelUpdater }>();

export function firstModelPartsOf(agent: Agent): { job: FirstModelJob; updater: ModelUpdater } | undefined {
  return parts.get(agent);
}

/**
 * A first model fitted on the gateway (agent/first-model): the check, scheduled after the IoT Edge
 * part started, whose model updater installs the models it fits (with the hub off, an updater of its
 * own, which never gets a desired map: it installs the local models only).
 */
export function wireFirstModel(agent: Agent, opts: FirstModelWiringOptions = {}): Part[] {
  let job: FirstModelJob | null = null;
  let own: ModelUpdater | null = null;
  let timer: NodeJS.Timeout | null = null;
  return [
    {
      name: 'first-model',
      start: () => {
        const edge = edgeRuntimeOf(agent);
        // With the hub off, an updater of its own: it installs a pump's first model now and then, and
        // reads the pump's recent readings from the buffer then rather than following every commit.
        const updater = edge?.updater ?? (own = createModelUpdater(agent, { recordRecent: false }).updater);
        job = new FirstModelJob({
          afterHours: () => agent.config.firstModelAfterHours,
          stoppedWhen: () => agent.config.firstModelStoppedWhen,
          retentionHours: () => agent.config.retentionHours,
          buffer: agent.buffer,
          engine: agent.engine,
          store: agent.modelStore,
          states: agent.firstModels,
          updater,
          clock: Date.now,
          logger: agent.logger.child({ component: 'first-model' }),
        });
        parts.set(agent, { job, updater });
        const started = job;
        // The setting at 0 (off) at the start: the first models recorded go out of service.
        started.settingChanged();
        edge?.onSettingsApplied(() => started.settingChanged());
        agent.models.onRolledBack((key, rolledBack) => {
          if (rolledBack.origin === GATEWAY_ORIGIN) started.rolledBack(key, rolledBack.version, rolledBack.reason);
        });
        // First models recorded but not switched in when the agent stopped (a crash between the two):
        // installed now, before any twin read (an offline start), as the persisted ones were restored;
        // and those no longer recorded (the setting at 0) taken out of service.
        updater.localChanged();
        agent.status.setFirstModels(() => started.view());
        agent.scheduler.every('first-model', opts.checkPattern ?? FIRST_MODEL_CHECK, () => started.run());
        timer = setTimeout(() => {
          started.run().catch((err: unknown) => agent.logger.warn({ component: 'first-model', err: { message: (err as Error).message } }, 'first model check failed'));
        }, opts.firstCheckMs ?? FIRST_MODEL_FIRST_CHECK_MS);
        timer.unref();
      },
      stop: async () => {
        if (timer) clearTimeout(timer);
        job?.stop();
        await own?.stop();
      },
    },
  ];
}
