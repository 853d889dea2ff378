/** `pumpwatch-trainer deploy`: push a registered model to gateways through their module twins. */
import type { TwinRegistry } from '../cloud/context.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { pushDeploy, resolveDeploy, type DeployRequest, type DeployResult, type ResolvedDeploy } from '../deploy/deploy.js';
import { checkCanSign, DEFAULT_SAS_HOURS } from '../deploy/sas.js';
import { DEFAULT_MODULE, defaultQuery } from '../deploy/twin.js';
import { TrainerError, UsageError } from '../errors.js';
import type { ModelRecord } from '../registry/records.js';
import { readBest } from '../registry/registry.js';
import { optionalNumber, parseOptions, requireSource, requireVersion, type Command, type CommandContext, type Io } from './command.js';

export const deployOptions = {
  device: { type: 'string' },
  module: { type: 'string' },
  query: { type: 'string' },
  shadow: { type: 'boolean' },
  'expires-hours': { type: 'string' },
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
  --expires-hours H   lifetime of the read-only model URL (default ${DEFAULT_SAS_HOURS})`;

const HELP = `Usage: pumpwatch-trainer deploy --source ID [--version V] [--device D [--module M] | --query "SQL"] [options]

Makes a read-only, expiring SAS URL for the model blob and sets models.<source> = { version,
url, sha256, size } in the desired properties of the module twin of one gateway, or of every
gateway that serves the source. The agent downloads, checks and swaps the model. Checked first:
model.onnx exists with the size its model.json records, and (for the best version) best.json
agrees with that model.json; nothing is written otherwise.

Options:
  --source ID         data source (pump) id, or "default" (required)
  --version V         a registered version (default: the best one)
${DEPLOY_OPTION_HELP}
  -h, --help          this help

Environment: PUMPWATCH_BLOB_CONNECTION_STRING with an account key (to sign the URL),
PUMPWATCH_BLOB_CONTAINER, PUMPWATCH_IOTHUB_CONNECTION_STRING (service connection string).
Exit codes: 0 every module updated, 1 a module failed or none matched, or a failure before
any update (a PW_TRAINER_* code says which), 2 bad usage.`;

type DeployValues = { device?: unknown; module?: unknown; query?: unknown; shadow?: unknown; 'expires-hours'?: unknown };

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
  checkCanSign(ctx.container());
  const argv: string[] = [];
  for (const flag of ['device', 'module', 'query', 'expires-hours'] as const) if (typeof v[flag] === 'string') argv.push(`--${flag}`, v[flag]);
  if (v.shadow === true) argv.push('--shadow');
  return { target, shadow: v.shadow === true, hours, registry, argv };
}

/** Reads and checks what the deploy needs (record, model blob, target modules) without writing anything. */
export async function resolvePlanned(ctx: CommandContext, plan: DeployPlan, source: string, version?: string, record?: ModelRecord): Promise<ResolvedDeploy> {
  return resolveDeploy(ctx.container(), plan.registry, { source, version, target: plan.target }, record);
}

/** Signs the URL and writes the twins of a resolved deploy. */
export async function pushPlanned(ctx: CommandContext, plan: DeployPlan, source: string, resolved: ResolvedDeploy): Promise<DeployResult> {
  return pushDeploy(ctx.container(), plan.registry, resolved, { source, shadow: plan.shadow, expiresOn: new Date(ctx.now().getTime() + plan.hours * 3_600_000) });
}

/** Deploys `version` (default: the best one) of `source` as planned. */
export async function runDeploy(ctx: CommandContext, plan: DeployPlan, source: string, version?: string): Promise<DeployResult> {
  return pushPlanned(ctx, plan, source, await resolvePlanned(ctx, plan, source, version));
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
    io.err(`deploy: ${noModuleMessage(result)}`);
    return 1;
  }
  io.out(`deploy ${result.blob} → ${result.targets.length} module(s)${skippedNote(result)}`);
  for (const t of result.targets) io.out(`  ${t.ok ? 'ok    ' : 'FAILED'} ${t.deviceId}/${t.moduleId}: ${t.detail}`);
  return result.targets.every((t) => t.ok) ? 0 : 1;
}

/** One shell word: as it is when it holds nothing a shell would read, else in single quotes. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The `deploy` command that pushes `version` of `source` to the targets of `plan`. */
export function deployCommandLine(source: string, version: string, plan: DeployPlan): string {
  return ['pumpwatch-trainer', 'deploy', '--source', source, '--version', version, ...plan.argv].map(shellWord).join(' ');
}

/**
 * The deploy after best.json moved to `version` (rollback, train --deploy): a failure after the
 * move cannot be undone by running the command again (a rollback would move best.json once more,
 * a re-run of train would keep the model and deploy nothing), so it says that best.json now names
 * `version` and prints the exact `deploy` command that pushes it. Returns the exit code.
 */
export async function deployAfterMove(ctx: CommandContext, plan: DeployPlan, source: string, version: string, io: Io, resolved?: ResolvedDeploy): Promise<number> {
  let code: number;
  try {
    code = printDeploy(await pushPlanned(ctx, plan, source, resolved ?? (await resolvePlanned(ctx, plan, source, version))), io);
  } catch (err) {
    if (!(err instanceof TrainerError)) throw err;
    io.err(`deploy: ${err.code}: ${safeErrorMessage(err)}`);
    code = 1;
  }
  if (code !== 0) io.err(`${source}: best.json now names ${version}, which was not deployed to every module; to push it: ${deployCommandLine(source, version, plan)}`);
  return code;
}

/**
 * `--deploy` after a promotion: pushes `version` only while best.json still names it. Another run
 * may have promoted a newer version in the seconds since; pushing this one would overwrite it on
 * the gateways, so it is not deployed, and the command that deploys the best is printed.
 */
export async function deployIfStillBest(ctx: CommandContext, plan: DeployPlan, source: string, version: string, io: Io): Promise<number> {
  const best = (await readBest(ctx.container(), source))?.pointer.version ?? null;
  if (best !== version) {
    io.err(`${source}: ${version} was not deployed: best.json names ${best ?? 'no version'} now (another run changed it after this one promoted)${best === null ? '' : `; to push the best: ${deployCommandLine(source, best, plan)}`}`);
    return 0;
  }
  return deployAfterMove(ctx, plan, source, version, io);
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
    return printDeploy(await runDeploy(ctx, plan, source, version), io);
  },
};
