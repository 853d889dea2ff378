/** `pumpwatch-trainer deploy`: push a registered model to gateways through their module twins. */
import type { TwinRegistry } from '../cloud/context.js';
import { deployModel, type DeployRequest, type DeployResult } from '../deploy/deploy.js';
import { checkCanSign, DEFAULT_SAS_HOURS } from '../deploy/sas.js';
import { DEFAULT_MODULE, defaultQuery } from '../deploy/twin.js';
import { UsageError } from '../errors.js';
import { optionalNumber, parseOptions, requireSource, type Command, type CommandContext, type Io } from './command.js';

export const deployOptions = {
  device: { type: 'string' },
  module: { type: 'string' },
  query: { type: 'string' },
  shadow: { type: 'boolean' },
  'expires-hours': { type: 'string' },
} as const;

export const DEPLOY_OPTION_HELP = `  --device D          deploy to this gateway's module only (with --module)
  --module M          module id (default: "${DEFAULT_MODULE}")
  --query "SQL"       deploy to every module this IoT Hub twin query finds
                      (default: the modules that report the source in their twin, or
                      run on a device whose uploads carry its readings, e.g.
                      ${defaultQuery('pump-17', DEFAULT_MODULE, ['gw-1'])})
  --shadow            deploy as a shadow model: scored beside the live one, never alerted
  --expires-hours H   lifetime of the read-only model URL (default ${DEFAULT_SAS_HOURS})`;

const HELP = `Usage: pumpwatch-trainer deploy --source ID [--version V] [--device D [--module M] | --query "SQL"] [options]

Makes a read-only, expiring SAS URL for the model blob and sets models.<source> = { version,
url, sha256, size } in the desired properties of the module twin of one gateway, or of every
gateway that serves the source. The agent downloads, checks and swaps the model.

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
    return { query: v.query };
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
  return { target, shadow: v.shadow === true, hours, registry };
}

/** Deploys `version` (default: the best one) of `source` as planned. */
export async function runDeploy(ctx: CommandContext, plan: DeployPlan, source: string, version?: string): Promise<DeployResult> {
  return deployModel(ctx.container(), plan.registry, {
    source,
    version,
    target: plan.target,
    shadow: plan.shadow,
    expiresOn: new Date(ctx.now().getTime() + plan.hours * 3_600_000),
  });
}

export function printDeploy(result: DeployResult, io: Io): number {
  if (result.targets.length === 0) {
    io.err(`deploy: no module matched; ${result.version} was not deployed`);
    return 1;
  }
  io.out(`deploy ${result.blob} → ${result.targets.length} module(s)`);
  for (const t of result.targets) io.out(`  ${t.ok ? 'ok    ' : 'FAILED'} ${t.deviceId}/${t.moduleId}: ${t.detail}`);
  return result.targets.every((t) => t.ok) ? 0 : 1;
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
    const plan = prepareDeploy(ctx, v);
    return printDeploy(await runDeploy(ctx, plan, source, typeof v.version === 'string' ? v.version : undefined), io);
  },
};
