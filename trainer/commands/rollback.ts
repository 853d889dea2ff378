/** `pumpwatch-trainer rollback`: the previous best model becomes best again and is re-deployed. */
import { DEFAULT_SAS_HOURS } from '../deploy/sas.js';
import { rollbackBest } from '../registry/rollback.js';
import { optionalNumber, parseOptions, requireSource, type Command } from './command.js';
import { deployOptions, DEPLOY_OPTION_HELP, printDeploy, runDeploy, targetOf } from './deploy.js';

const HELP = `Usage: pumpwatch-trainer rollback --source ID [--no-deploy] [deploy options]

Points models/<source>/best.json back at the version promoted before the current one
(conditional write: fails if another trainer moved it meanwhile), then deploys that version
to the same gateways a deploy would reach.

Options:
  --source ID         data source (pump) id (required)
  --no-deploy         only move best.json
${DEPLOY_OPTION_HELP}
  -h, --help          this help`;

export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 're-promote and re-deploy the previous best model of a source',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('rollback', args, { source: { type: 'string' }, 'no-deploy': { type: 'boolean' }, ...deployOptions });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('rollback', v.source);
    const target = targetOf(v);
    const { from, to } = await rollbackBest(ctx.container(), source, ctx.now());
    io.out(`${source}: best.json ${from} → ${to.version} (rollback)`);
    if (v['no-deploy'] === true) return 0;
    const result = await runDeploy(ctx, {
      source,
      target,
      shadow: v.shadow === true,
      hours: optionalNumber(v['expires-hours'], '--expires-hours', 1, 24 * 365) ?? DEFAULT_SAS_HOURS,
      version: to.version,
    });
    return printDeploy(result, io);
  },
};
