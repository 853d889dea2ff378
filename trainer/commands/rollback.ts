/** `pumpwatch-trainer rollback`: the previous best model becomes best again and is re-deployed. */
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';
import { commitRollback, planRollback } from '../registry/rollback.js';
import { parseOptions, requireSource, requireVersion, type Command } from './command.js';
import { deployBest, deployOptions, DEPLOY_OPTION_HELP, noModuleMessage, prepareDeploy, resolvePlanned } from './deploy.js';

const HELP = `Usage: pumpwatch-trainer rollback --source ID [--version V] [--no-deploy] [deploy options]

Points models/<source>/best.json back at the version promoted before the current one
(conditional write: fails if another trainer moved it meanwhile), then deploys that version
to the same gateways a deploy would reach. Checked first, and best.json is not moved when one
fails: the deploy options and the IoT Hub settings; that the previous version's model.onnx is
there with the size and sha256 its model.json records; and the modules the deploy would write
(none matched, or the twin of --device D cannot be read: exit 1, nothing moved). best.json is
moved with the deploy marked pending, and the mark is cleared once every module has the version.
A twin update that fails after the move is reported with the "deploy" command that pushes the
version best.json now names (run that, not another rollback, which would move best.json once
more); the next train or train-all with --deploy also pushes it.
When another rollback or a promotion moved best.json first, nothing is moved and the error
says what best.json names now: read it before rolling back again.
The version rolled back from (every best moved back past, with --version) is recorded in
best.json ("rolledBack") and in its model.json: train does not promote it again (a rerun of
its range gives the same version) unless --version makes it best.
With --version V: V instead of the previous version (an earlier best: back that far; any
other registered version, such as one rolled back from: made best as a promotion would).
When best.json is missing but versions are registered, train, drift and deploy refuse, and
rollback --version V writes a new best.json naming V (the repair), with the versions rolled
back from that their model.json records; the history of earlier bests is lost with best.json.

Options:
  --source ID         data source (pump) id (required)
  --version V         make V best instead of the previous version (see above)
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
    const v = parseOptions('rollback', args, { source: { type: 'string' }, version: { type: 'string' }, 'no-deploy': { type: 'boolean' }, ...deployOptions });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('rollback', v.source);
    const version = v.version === undefined ? undefined : requireVersion('rollback', v.version);
    // Checked before best.json moves: a rollback that cannot be deployed must not happen at all.
    const plan = v['no-deploy'] === true ? null : prepareDeploy(ctx, v);
    const container = ctx.models();
    const rollback = await planRollback(container, source, ctx.now(), plan !== null, version);
    const still = rollback.from ?? 'missing';
    const resolved = plan === null ? null : await resolvePlanned(ctx, plan, source, rollback.to.version, rollback.record);
    if (resolved !== null && resolved.modules.length === 0) {
      throw new TrainerError('PW_TRAINER_DEPLOY', `${noModuleMessage(resolved)}; best.json was not moved (still ${still})`);
    }
    // A module named by --device is not looked up by a query: read its twin, so a typo moves nothing either.
    if (plan !== null && 'module' in plan.target) {
      const { deviceId, moduleId } = plan.target.module;
      try {
        await plan.registry.getModuleTwin(deviceId, moduleId);
      } catch (err) {
        throw new TrainerError('PW_TRAINER_DEPLOY', `cannot read the twin of ${deviceId}/${moduleId}: ${safeErrorMessage(err)}; best.json was not moved (still ${still})`, { cause: err });
      }
    }
    const moved = await commitRollback(container, rollback);
    io.out(`${source}: best.json ${rollback.from ?? '(missing)'} → ${rollback.to.version} (${moveKind(rollback)})`);
    if (moved.unmarked.length > 0) {
      io.err(`warning: ${source}: the rollback is done, but not recorded in the model.json of ${moved.unmarked.join(', ')}: only best.json records it (a lost best.json would lose it)`);
    }
    if (plan === null || resolved === null) return 0;
    return deployBest(ctx, plan, source, { state: moved, record: rollback.record }, io, resolved);
  },
};

/**
 * What the move was. `rollback --version V` to a version that was never best makes it best as a
 * promotion would and rolls back from nothing: the version it replaced is not held back, so a
 * later `train` may promote it again. Printed as "(rollback)" alike, that read as a rollback.
 */
function moveKind(plan: { from: string | null; movedPast: readonly string[] }): string {
  if (plan.movedPast.length > 0 || plan.from === null) return 'rollback';
  return `made best by hand, as a promotion would: ${plan.from} is not rolled back from, and train may promote it again`;
}

