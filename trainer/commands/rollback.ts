/** `pumpwatch-trainer rollback`: the previous best model becomes best again and is re-deployed. */
import { rollbackBest } from '../registry/rollback.js';
import { parseOptions, requireSource, type Command } from './command.js';
import { deployOptions, DEPLOY_OPTION_HELP, prepareDeploy, printDeploy, runDeploy } from './deploy.js';

const HELP = `Usage: pumpwatch-trainer rollback --source ID [--no-deploy] [deploy options]

Points models/<source>/best.json back at the version promoted before the current one
(conditional write: fails if another trainer moved it meanwhile), then deploys that version
to the same gateways a deploy would reach. The deploy options and the IoT Hub settings are
checked first: when they are not usable, best.json is not moved.

Options:
  --source ID         data source (pump) id (required)
  --no-deploy         only move best.json (no IoT Hub needed)
${DEPLOY_OPTION_HELP}
  -h, --help          this help

Exit codes: 0 rolled back (and every module updated), 1 failure (a PW_TRAINER_* code says
which) or a module failed or none matched, 2 bad usage.`;

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
    // Checked before best.json moves: a rollback that cannot be deployed must not happen at all.
    const plan = v['no-deploy'] === true ? null : prepareDeploy(ctx, v);
    const { from, to } = await rollbackBest(ctx.container(), source, ctx.now());
    io.out(`${source}: best.json ${from} → ${to.version} (rollback)`);
    if (plan === null) return 0;
    return printDeploy(await runDeploy(ctx, plan, source, to.version), io);
  },
};
