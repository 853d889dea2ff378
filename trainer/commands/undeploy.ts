/**
 * `pumpwatch-trainer undeploy`: removes `models.<source>` from module twins. IoT Hub holds at most
 * 32 KB of desired properties per module, about 90 model entries; nothing else removes the
 * entries of retired pumps, so without it a gateway's section only grows until deploys fail.
 */
import { DEFAULT_MODULE, removeDesiredModel, targetModules } from '../deploy/twin.js';
import { failureDetail, TrainerError, UsageError } from '../errors.js';
import { parseOptions, requireSource, type Command } from './command.js';
import { targetOf } from './deploy.js';

const HELP = `Usage: pumpwatch-trainer undeploy --source ID (--device D [--module M] | --query "SQL" [--module M])

Removes models.<source> from the desired properties of one module twin, or of every module a
twin query finds (a merge patch with null, conditional on the twin's ETag). The agent then
forgets that pump's model, and the pump is scored by the gateway's default model; its
reported entry is deleted. "--source default" removes the gateway's deployed default model:
the agent goes back to its start-up model (the bundled one, or PUMPWATCH_DEFAULT_MODEL).
The registry (best.json, the model files) is not changed: a later deploy of the source to
that gateway writes the entry again. Use it for pumps a gateway no longer serves: IoT Hub
caps desired properties at 32 KB, about 90 model entries per module.

Options:
  --source ID         data source (pump) id, or "default" (required)
  --device D          this gateway's module only
  --module M          module id (default: "${DEFAULT_MODULE}"); with --query, only the modules
                      of this id among those the query finds
  --query "SQL"       every module this IoT Hub twin query finds
  -h, --help          this help

Environment: PUMPWATCH_IOTHUB_CONNECTION_STRING (service connection string).
Each module's line: "removed", "absent" (no such entry) or "FAILED <device>/<module>: PW_CODE:
message" (PW_TRAINER_DEPLOY: the hub refused the update or did not answer).
Exit codes: 0 every module updated or without the entry, 1 a module failed, or none matched or
the query failed (PW_TRAINER_DEPLOY), or IoT Hub is not configured (PW_TRAINER_NOT_CONFIGURED),
2 bad usage.`;

export const undeployCommand: Command = {
  name: 'undeploy',
  summary: 'remove a pump\'s model entry from module twins',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('undeploy', args, { source: { type: 'string' }, device: { type: 'string' }, module: { type: 'string' }, query: { type: 'string' } });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const source = requireSource('undeploy', v.source);
    const target = targetOf(v);
    // No default target: removing a model is done only where it is asked for.
    if (!('module' in target) && !('query' in target)) throw new UsageError('give --device D or --query "SQL" (see "pumpwatch-trainer undeploy --help")');
    const registry = ctx.registry();
    const { modules, skipped, moduleFilter } = await targetModules(registry, target);
    const skippedNote = skipped > 0 ? `; ${skipped} module(s) the query found skipped: not module "${moduleFilter ?? ''}" (--module)` : '';
    // A failure of its own, with its code as rollback's (a --query with a typo), not a line without one.
    if (modules.length === 0) throw new TrainerError('PW_TRAINER_DEPLOY', `no module matched${skippedNote}; models.${source} was not removed anywhere`);
    io.out(`undeploy models.${source} → ${modules.length} module(s)${skippedNote}`);
    let failed = 0;
    for (const m of modules) {
      try {
        const version = await removeDesiredModel(registry, m, source);
        if (version === 'absent') io.out(`  absent  ${m.deviceId}/${m.moduleId}: no models.${source} in its desired properties, nothing to remove`);
        else io.out(`  removed ${m.deviceId}/${m.moduleId}: desired models.${source} deleted${version !== null ? `, $version ${version}` : ''}`);
      } catch (err) {
        failed++;
        // Its code first, as deploy's FAILED lines: the hub refused or did not answer (PW_TRAINER_DEPLOY).
        io.out(`  FAILED  ${m.deviceId}/${m.moduleId}: ${failureDetail(err, 'PW_TRAINER_DEPLOY')}`);
      }
    }
    return failed > 0 ? 1 : 0;
  },
};
