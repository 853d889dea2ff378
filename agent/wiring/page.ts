import { LabelStore } from '../../buffer/labels.js';
import { episodeWalker, registerAlertsRoutes } from '../http/alerts-routes.js';
import { registerLabelsRoutes } from '../http/labels-routes.js';
import { LiveEvents } from '../http/live-events.js';
import { LABEL_FOLLOW_PATTERN, labelFollowJob } from '../label-follower.js';
import { registerPageRoutes } from '../http/page-routes.js';
import { DEFAULT_LACKS, PumpBoard, type NotScoredView } from '../http/pump-board.js';
import type { AgentParts as Agent, Part } from './part.js';

/**
 * /healthz's `scoring`: degraded (not failing: the agent takes, stores and uploads the readings,
 * only their scores are missing, and a restart would not mend it) while some pump keeps sending
 * with none of its readings scored for the not-scored delay; 0 turns it off, as it does pump-not-scored.
 */
export function scoringHealth(view: NotScoredView | null, afterSeconds: number): { ok: true; degraded?: string } {
  if (afterSeconds === 0 || view === null) return { ok: true };
  const n = view.pumps.length;
  const head = `${n} pump${n === 1 ? '' : 's'} sending with none of ${n === 1 ? 'its' : 'their'} readings scored for over ${Math.round(afterSeconds / 60)} min`;
  const of = view.reasonPumps === n ? '' : ` (${view.reasonPumps} of them)`;
  if (view.defaultLacks !== null) {
    const shown = view.defaultLacks.slice(0, 8).join(', ') + (view.defaultLacks.length > 8 ? ', …' : '');
    return { ok: true, degraded: `${head}${of}: ${DEFAULT_LACKS} (${shown}): deploy a model of their own, or fit one for the site (README "Commissioning a site whose sensors have their own names")` };
  }
  return { ok: true, degraded: `${head}; commonest reason${of}: ${view.reason}` };
}

/**
 * The technician's page, alerts and labels (issue 6): routes and the parts it adds, in start order.
 * Labels live in the buffer's SQLite file; the sync uploads them with `uploadPendingLabels`
 * (sync/labels-upload.ts) over its own `new LabelStore(agent.buffer)`.
 */
export function wirePage(agent: Agent): Part[] {
  const labels = new LabelStore(agent.buffer);
  const board = new PumpBoard({ buffer: agent.buffer, engine: agent.engine, models: agent.models, monotonic: agent.monotonic, configuredDefault: agent.config.defaultModel });
  const events = new LiveEvents();
  agent.pipeline.onCommit((rows, seqs) => {
    board.record(rows, seqs);
    events.record(rows, seqs);
  });
  // Refused readings of a readable pump: the card says they are refused, rather than silent.
  agent.pipeline.onRefuse((refused) => board.refused(refused));
  agent.status.setPumpRefusals(() => board.refusalStatus());
  agent.status.setOutsideGenericRange(() => board.outsideGenericRange());
  // For the heartbeat on output `alerts` (agent/edge/status-messages.ts): the board's states, counted.
  agent.status.setPumpStates(() => {
    const counts: Record<string, number> = {};
    for (const p of board.summaries()) counts[p.state] = (counts[p.state] ?? 0) + 1;
    return counts;
  });
  // Pumps that send and are not scored are not a healthy site (a site whose sensors have their own
  // names, scored by the default model, looked "all parts healthy" with none of its pumps scored).
  // Quiet while the buffer's own check is not ok: readings it cannot store are not scored either,
  // and that check already names the cause (a full volume, a closed file), as `inputs` does.
  agent.status.addHealthCheck({
    name: 'scoring',
    check: () => (agent.buffer.health().ok ? scoringHealth(board.notScored(agent.config.alertsNotScoredAfterSeconds * 1000), agent.config.alertsNotScoredAfterSeconds) : { ok: true }),
  });
  registerPageRoutes(agent.server, { board, events });
  // one episode walk at a time, whether asked by the page or by a label on an alert alone
  const episodes = episodeWalker(labels);
  registerAlertsRoutes(agent.server, { labels, engine: agent.engine, models: agent.models, episodes });
  // A label's from/to are bounded as a reading's ts is, by the settings in force.
  registerLabelsRoutes(agent.server, {
    labels,
    buffer: agent.buffer,
    episodes,
    limits: () => ({ maxFutureMs: agent.config.maxFutureSeconds * 1000, maxPastMs: agent.config.maxPastSeconds * 1000 }),
  });
  // Labels given on a running alarm follow it to its end; their walks queue with the others.
  const follow = labelFollowJob({ labels, buffer: agent.buffer, episodes, logger: agent.logger.child({ component: 'labels' }), stopped: () => !agent.scheduler.running });
  agent.scheduler.every('label-follow', LABEL_FOLLOW_PATTERN, follow);
  return [{ name: 'page-events', start: () => events.start(), stop: () => events.stop() }];
}
