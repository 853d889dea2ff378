/** `pumpwatch-trainer deploy`: push a registered model to gateways through their module twins. */
import type { TwinRegistry } from '../cloud/context.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { pushDeploy, resolveDeploy, type DeployRequest, type DeployResult, type ResolvedDeploy } from '../deploy/deploy.js';
import { checkCanSign, DEFAULT_SAS_HOURS } from '../deploy/sas.js';
import { DEFAULT_MODULE, defaultQuery } from '../deploy/twin.js';
import { TrainerError, UsageError } from '../errors.js';
import type { ModelRecord } from '../registry/records.js';
import { readBestRecord } from '../registry/best-record.js';
import { readBest, type BestState } from '../registry/read.js';
import { rewriteDeployPending, setDeployPending } from '../registry/write.js';
import { optionalNumber, parseOptions, requireSource, requireVersion, type Command, type CommandContext, type Io } from './command.js';

export const deployOptions = {
  device: { type: 'string' },
  module: { type: 'string' },
  query: { type: 'string' },
  shadow: { type: 'boolean' },
  'expires-hours': { type: 'string' },
  'force-old-agents': { type: 'boolean' },
} as const;

export const DEPLOY_OPTION_HELP = `  --device D          deploy to this gateway's module only (with --module)
  --module M          module id (default: "${DEFAULT_MODULE}"); with --query, only the
                      modules of this id among those the query finds (the others are
                      skipped and counted)
  --query "SQL"       deploy to every module this IoT Hub twin query finds
                      (default: the modules that report the source in their twin, or
                      run on a device whose uploads carry its readings, e.g.
                      ${defaultQuery('pump-17', DEFAULT_MODULE, ['gw-1'])})
  --shadow            deploy as a shadow model: scored beside the live one, never alerted
  --force-old-agents  write the model also to modules whose agent does not read its
                      contract or rules (by what it reports in its twin; one that reports
                      nothing reads contract 1 only), with a warning each: such an agent
                      reports the model rejected and keeps its current one
  --expires-hours H   lifetime of the read-only model URL (default ${DEFAULT_SAS_HOURS});
                      "pumpwatch-trainer refresh-urls" signs it again before it expires`;

const HELP = `Usage: pumpwatch-trainer deploy --source ID [--version V] [--device D [--module M] | --query "SQL"] [options]

Makes a read-only, expiring SAS URL for the model blob and sets models.<source> = { version,
url, sha256, size } in the desired properties of the module twin of one gateway, or of every
gateway that serves the source. The agent downloads, checks and swaps the model. Checked first:
model.onnx exists with the size and sha256 its model.json records (the bytes are read and
hashed: every agent refuses a model whose sha256 is not the twin entry's), and (for the best
version) best.json agrees with that model.json; nothing is written otherwise. A module whose
agent does not read the model's contract (1, or 2 with the rules its pumpwatch.requires names),
by what it reports in its twin (state.modelContracts, state.modelRules; an agent before
2026-12-07 reports nothing and reads contract 1 only), is not updated: its line says
PW_TRAINER_AGENT_TOO_OLD, the version it reports, what the model needs and what it reads;
the other modules are updated (--force-old-agents writes it too). A deploy of the best version (with
or without --version) that updates every module clears best.json's pending mark
(deployPending, set by a promotion with --deploy or a rollback whose deploy did not finish),
conditional on best.json not having changed since it was read. When best.json names another
version after a deploy of the best one (promoted meanwhile: this deploy may have landed over
it), that version's deploy is marked pending, rewritten so that its own run cannot clear it.

Options:
  --source ID         data source (pump) id, or "default" (required)
  --version V         a registered version (default: the best one)
${DEPLOY_OPTION_HELP}
  -h, --help          this help

Environment: PUMPWATCH_BLOB_CONNECTION_STRING with an account key (to sign the URL),
PUMPWATCH_BLOB_CONTAINER, PUMPWATCH_IOTHUB_CONNECTION_STRING (service connection string).
Exit codes: 0 every module updated, 1 a module failed or none matched, best.json moved to
another version during the deploy (that version's deploy is then pending), or a failure before
any update (a PW_TRAINER_* code says which), 2 bad usage.`;

type DeployValues = { device?: unknown; module?: unknown; query?: unknown; shadow?: unknown; 'expires-hours'?: unknown; 'force-old-agents'?: unknown };

export function targetOf(v: DeployValues): DeployRequest['target'] {
  const moduleId = typeof v.module === 'string' && v.module !== '' ? v.module : DEFAULT_MODULE;
  if (typeof v.device === 'string' && typeof v.query === 'string') throw new UsageError('give --device or --query, not both');
  if (typeof v.query === 'string') {
    if (!/^\s*select\s/i.test(v.query)) throw new UsageError('--query must be an IoT Hub twin query (SELECT * FROM devices.modules WHERE ...)');
    return typeof v.module === 'string' && v.module !== '' ? { query: v.query, moduleId: v.module } : { query: v.query };
  }
  if (typeof v.device === 'string' && v.device !== '') return { module: { deviceId: v.device, moduleId } };
  return { moduleId };
}

/** A deploy whose prerequisites were all checked: options parsed, IoT Hub client made, a key to sign URLs. */
export interface DeployPlan {
  target: DeployRequest['target'];
  shadow: boolean;
  /** --force-old-agents: write also to modules whose agent does not read the model. */
  force: boolean;
  hours: number;
  registry: TwinRegistry;
  /** The deploy options as given, to print a `deploy` command that does the same. */
  argv: string[];
}

/**
 * Checks everything a deploy needs before the command changes anything, so that `rollback` and
 * `--deploy` never move best.json and then fail to deploy: usage errors (exit 2) first, then
 * PW_TRAINER_NOT_CONFIGURED for a missing or unusable IoT Hub connection string or a container
 * that cannot sign model URLs.
 */
export function prepareDeploy(ctx: CommandContext, v: DeployValues): DeployPlan {
  const target = targetOf(v);
  const hours = optionalNumber(v['expires-hours'], '--expires-hours', 1, 24 * 365) ?? DEFAULT_SAS_HOURS;
  const registry = ctx.registry();
  checkCanSign(ctx.models());
  const argv: string[] = [];
  for (const flag of ['device', 'module', 'query', 'expires-hours'] as const) if (typeof v[flag] === 'string') argv.push(`--${flag}`, v[flag]);
  if (v.shadow === true) argv.push('--shadow');
  if (v['force-old-agents'] === true) argv.push('--force-old-agents');
  return { target, shadow: v.shadow === true, force: v['force-old-agents'] === true, hours, registry, argv };
}

/** Reads and checks what the deploy needs (record, model blob, target modules) without writing anything. */
export async function resolvePlanned(ctx: CommandContext, plan: DeployPlan, source: string, version?: string, record?: ModelRecord): Promise<ResolvedDeploy> {
  return resolveDeploy(ctx.models(), plan.registry, { source, version, target: plan.target }, record);
}

/** Signs the URL and writes the twins of a resolved deploy. */
export async function pushPlanned(ctx: CommandContext, plan: DeployPlan, source: string, resolved: ResolvedDeploy): Promise<DeployResult> {
  return pushDeploy(ctx.models(), plan.registry, resolved, { source, shadow: plan.shadow, force: plan.force, expiresOn: new Date(ctx.now().getTime() + plan.hours * 3_600_000) });
}

/** `, 2 skipped: not module "M" (--module)` when a --module filter left modules of the query out. */
function skippedNote(r: { skipped: number; moduleFilter: string | null }): string {
  return r.skipped > 0 ? `; ${r.skipped} module(s) the query found skipped: not module "${r.moduleFilter ?? ''}" (--module)` : '';
}

/** The message of a deploy that found no module to write (DeployResult or ResolvedDeploy). */
export function noModuleMessage(r: { version: string; skipped: number; moduleFilter: string | null }): string {
  return `no module matched${skippedNote(r)}; ${r.version} was not deployed`;
}

export function printDeploy(result: DeployResult, io: Io): number {
  if (result.targets.length === 0) {
    // With its code, as deployBest prints a deploy's other failures: a log search for PW_ finds it
    io.err(`deploy: PW_TRAINER_DEPLOY: ${noModuleMessage(result)}`);
    return 1;
  }
  io.out(`deploy ${result.blob} → ${result.targets.length} module(s)${skippedNote(result)}`);
  for (const t of result.targets) io.out(`  ${t.ok ? 'ok    ' : 'FAILED'} ${t.deviceId}/${t.moduleId}: ${t.detail}`);
  for (const t of result.targets) if (t.warning !== undefined) io.err(`warning: ${t.warning}`);
  return result.targets.every((t) => t.ok) ? 0 : 1;
}

/** One shell word: as it is when it holds nothing a shell would read, else in single quotes. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The `deploy` command that pushes `version` of `source` (without one: the best) to the targets of `plan`. */
export function deployCommandLine(source: string, version: string | undefined, plan: DeployPlan): string {
  return ['pumpwatch-trainer', 'deploy', '--source', source, ...(version === undefined ? [] : ['--version', version]), ...plan.argv].map(shellWord).join(' ');
}

/** best.json as read before a deploy, and the model.json of the version it names. */
export interface BestRead {
  state: BestState;
  record: ModelRecord;
}

/**
 * Deploys the version best.json names (`best`, read before the deploy), then settles its pending
 * mark (settleDeploy). A failure after best.json moved cannot be undone by running the command
 * again (a rollback would move best.json once more): with the mark it says that the deploy stays
 * pending, which the next `train`/`train-all --deploy` pushes; either way it prints the exact
 * `deploy` command that pushes it now. Returns the exit code: 0 only when every module was
 * updated and nothing is left pending.
 */
export async function deployBest(ctx: CommandContext, plan: DeployPlan, source: string, best: BestRead, io: Io, resolved?: ResolvedDeploy): Promise<number> {
  const { version, deployPending } = best.state.pointer;
  let code: number;
  let wrote = false;
  try {
    const result = await pushPlanned(ctx, plan, source, resolved ?? (await resolvePlanned(ctx, plan, source, version, best.record)));
    wrote = result.targets.length > 0;
    code = printDeploy(result, io);
  } catch (err) {
    if (!(err instanceof TrainerError)) throw err;
    io.err(`deploy: ${err.code}: ${safeErrorMessage(err)}`);
    code = 1;
  }
  const settled = await settleDeploy(ctx, plan, source, best.state, code, wrote, io);
  if (settled !== null) return settled;
  if (code !== 0) {
    const pending = deployPending === true ? '; its deploy stays pending in best.json, and the next train or train-all with --deploy pushes it' : '';
    io.err(`${source}: best.json now names ${version}, which was not deployed to every module${pending}; to push it${pending ? ' now' : ''}: ${deployCommandLine(source, version, plan)}`);
  }
  return code;
}

/** Conditional writes of best.json tried before a run gives up on one that keeps changing. */
const BEST_WRITE_ATTEMPTS = 5;

/**
 * After a deploy (exit `code`; `wrote`: a twin update was tried) of the version best.json named
 * when read before it (`state`):
 * - every module updated and the deploy was pending: the mark is cleared, conditional on the
 *   ETag read before the deploy. When best.json changed meanwhile, markMovedBest says what is
 *   left to do;
 * - best.json names another version now: the deploy may have landed over that newer version's
 *   own deploy, so markMovedBest marks it pending again.
 * null when there is nothing to settle (`code` stands).
 */
async function settleDeploy(ctx: CommandContext, plan: DeployPlan, source: string, state: BestState, code: number, wrote: boolean, io: Io): Promise<number | null> {
  const container = ctx.models();
  const version = state.pointer.version;
  if (code === 0 && state.pointer.deployPending === true) {
    if (await setDeployPending(container, state, false)) {
      io.out(`${source}: best.json ${version}: deployed, no longer pending`);
      return 0;
    }
    return markMovedBest(ctx, plan, source, version, code, io);
  }
  if (!wrote) return null;
  // best.json unreadable now: nothing is known to have moved, and the deploy's own outcome stands.
  const now = await readBest(container, source).catch((err: unknown) => {
    if (err instanceof TrainerError) return state;
    throw err;
  });
  return now?.pointer.version === version ? null : markMovedBest(ctx, plan, source, version, code, io);
}

/**
 * After a deploy of `version` (exit `code`) when best.json is no longer as read before it.
 * - It names `version` still: without the mark, another run deployed it and settled the mark,
 *   nothing is left to do; with it, another run marked it again (below: a deploy of another
 *   version may have landed over this one), and the deploy stays pending.
 * - It names another version (a newer promotion, or a rollback): the modules were just given
 *   `version`, perhaps over the newer one its own run had already pushed, so the newer best is
 *   marked pending and the run fails: its retry, or the next run with --deploy, pushes the best.
 *   The mark is rewritten even when it is there: its new ETag makes the clear of the newer
 *   version's own run (conditional on the ETag it read before its deploy) fail, and that run
 *   then reports its deploy as still pending instead of clearing a mark this deploy made true again.
 */
async function markMovedBest(ctx: CommandContext, plan: DeployPlan, source: string, version: string, code: number, io: Io): Promise<number> {
  const container = ctx.models();
  for (let attempt = 1; attempt <= BEST_WRITE_ATTEMPTS; attempt++) {
    const now = await readBest(container, source);
    if (now === null) {
      io.err(`${source}: best.json was removed while ${version} was being deployed`);
      return 1;
    }
    const best = now.pointer.version;
    if (best === version) {
      if (now.pointer.deployPending !== true) return code;
      io.err(
        `${source}: best.json marks the deploy of ${version} pending again: another run deployed while this one did, so the modules may hold its version; ` +
          `the next train or train-all with --deploy pushes ${version}; to push it now: ${deployCommandLine(source, version, plan)}`,
      );
      return 1;
    }
    if (await setDeployPending(container, now, true)) {
      io.err(
        `${source}: best.json moved to ${best} while ${version} was being deployed, so the modules may hold ${version}; ` +
          `the deploy of ${best} is pending in best.json, and the next train or train-all with --deploy pushes it; to push it now: ${deployCommandLine(source, best, plan)}`,
      );
      return 1;
    }
  }
  io.err(`${source}: best.json kept changing while ${version} was being deployed, so the modules may hold ${version}; to push the best: ${deployCommandLine(source, undefined, plan)}`);
  return 1;
}

/**
 * What a `--deploy` run made of the source's best version (train.ts runVersionOf): `promoted`,
 * this run promoted it; `live`, its challenger is the live model itself (the same data and
 * options gave the same version, for example after a hand `train` without --deploy promoted it).
 */
export interface RunVersion {
  version: string;
  how: 'promoted' | 'live';
}

/**
 * `train --deploy` and `train-all --deploy`, whatever the train outcome: deploys best.json's
 * version when it is this run's (`own`: promoted by it, or its challenger is the live model
 * itself) or when its deploy is pending (an earlier run promoted it and its deploy failed: a pod
 * retried by Kubernetes, a failed night), so deploys converge. This run's version without the
 * mark (another run of the same data, without --deploy, promoted it first or before) is marked
 * pending first, as this run's own promotion would have done, so that a failed deploy or a crash
 * leaves it pending. A version of this run that another run has replaced as best since is not
 * deployed (it would put an older model on the gateways); the command that pushes the best is
 * printed. Returns the exit code (0: nothing is left pending).
 */
export async function deployPendingBest(ctx: CommandContext, plan: DeployPlan, source: string, own: RunVersion | null, io: Io): Promise<number> {
  const container = ctx.models();
  for (let attempt = 1; ; attempt++) {
    const best = await readBestRecord(container, source, ctx.now());
    const version = best?.state.pointer.version ?? null;
    const pending = best?.state.pointer.deployPending === true;
    if (best && own !== null && own.version === version && !pending) {
      const marked = await rewriteDeployPending(container, best.state, true);
      if (marked === null) {
        // best.json changed between the read and the mark: read it again and decide on what it says now.
        if (attempt < BEST_WRITE_ATTEMPTS) continue;
        throw new TrainerError('PW_TRAINER_REGISTRY_CONFLICT', `models/${source}/best.json kept changing while this run marked the deploy of ${own.version} pending; to push it: ${deployCommandLine(source, own.version, plan)}`);
      }
      if (own.how === 'live') io.out(`${source}: ${own.version} is best and is this run's challenger (the same data and options gave the same model): deploying it, as a promotion with --deploy would`);
      return deployBest(ctx, plan, source, { state: marked, record: best.record }, io);
    }
    if (own !== null && own.version !== version) {
      const then = pending ? `, and its deploy is pending: deploying ${version ?? ''}` : version === null ? '' : `; to push the best: ${deployCommandLine(source, version, plan)}`;
      const changed = own.how === 'promoted' ? 'after this one promoted' : 'after this one read it';
      io.err(`${source}: ${own.version} was not deployed: best.json names ${version ?? 'no version'} now (another run changed it ${changed})${then}`);
    } else if (pending && own?.how !== 'promoted') {
      io.out(`${source}: best.json names ${version ?? ''}, whose deploy is pending (a run that promoted it did not reach every module): deploying it`);
    }
    if (!best || !pending) return 0;
    return deployBest(ctx, plan, source, best, io);
  }
}

/** best.json for `deploy --version V` (V may be best, with a pending mark to clear); null when it is not valid: a deploy of a given version does not need it. */
async function readBestIfValid(ctx: CommandContext, source: string): Promise<{ state: BestState } | null> {
  try {
    const state = await readBest(ctx.models(), source);
    return state && { state };
  } catch (err) {
    if (err instanceof TrainerError && err.code === 'PW_TRAINER_REGISTRY_INVALID') return null;
    throw err;
  }
}

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'push a registered model to gateways through their module twins',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('deploy', args, { source: { type: 'string' }, version: { type: 'string' }, ...deployOptions });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('deploy', v.source);
    const version = v.version === undefined ? undefined : requireVersion('deploy', v.version);
    const plan = prepareDeploy(ctx, v);
    const container = ctx.models();
    // best.json as read before the deploy: its pending mark is cleared only if it is still this one after it.
    const bestRead = version === undefined ? await readBestRecord(container, source, ctx.now()) : null;
    const best = version === undefined ? bestRead : await readBestIfValid(ctx, source);
    const resolved = await resolvePlanned(ctx, plan, source, version ?? bestRead?.state.pointer.version, bestRead?.record);
    // A failure of its own, with its code, as undeploy's and rollback's (its help promises one): nothing was written, nothing to settle.
    if (resolved.modules.length === 0) throw new TrainerError('PW_TRAINER_DEPLOY', noModuleMessage(resolved));
    const result = await pushPlanned(ctx, plan, source, resolved);
    const code = printDeploy(result, io);
    // A deploy of the best version (as read before it): its mark is settled, and a newer best it may have overwritten is marked pending.
    if (best?.state.pointer.version !== resolved.version) return code;
    return (await settleDeploy(ctx, plan, source, best.state, code, result.targets.length > 0, io)) ?? code;
  },
};
