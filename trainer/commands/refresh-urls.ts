/** `pumpwatch-trainer refresh-urls`: new read-only URLs for desired model entries whose SAS expires soon. */
import { refreshUrls, type RefreshResult } from '../deploy/refresh.js';
import { checkCanSign, DEFAULT_SAS_HOURS } from '../deploy/sas.js';
import { DEFAULT_MODULE, modelsQuery } from '../deploy/twin.js';
import type { CommandContext } from '../cloud/context.js';
import { UsageError } from '../errors.js';
import { optionalNumber, parseOptions, type Command } from './command.js';
import { targetOf } from './deploy.js';

export const DEFAULT_WITHIN_HOURS = 72;

const HELP = `Usage: pumpwatch-trainer refresh-urls [--within-hours H] [--query "SQL" [--module M] | --device D [--module M]] [--sas-hours N]

Finds, in one twin query, the desired models.<key> entries whose read-only URL expires within H
hours or has expired (its SAS "se"), signs a new URL for the same model blob, and patches only
that entry's url (version, sha256, size and shadow stay), conditional on the twin's ETag. A
gateway that was offline longer than a URL's lifetime then comes back to a URL that works; run
it daily (deployment/k8s/trainer-refresh-urls-cronjob.yaml). Only URLs of this trainer's
storage account and container that name the registry's model of their entry
(models/<key>/<version>/model.onnx) are signed again; others are skipped and named. Before it
signs, the blob is read and hashed (once per run) against the entry's size and sha256: one that
changed since the deploy fails that entry (every gateway would refuse it) and keeps its URL.
One line per entry refreshed, skipped or failed, then a summary; URLs are never printed with
their query. A FAILED line names its failure's code first ("FAILED <device>/<module>
models.<key>: PW_CODE: message"): PW_TRAINER_NO_MODEL the blob is gone, PW_TRAINER_ENTRY_MISMATCH
it is not the entry's model (size or sha256), PW_TRAINER_STORAGE it could not be read,
PW_TRAINER_DEPLOY the twin update was refused or not answered.

Options:
  --within-hours H    refresh URLs that expire within H hours (default ${DEFAULT_WITHIN_HOURS})
  --query "SQL"       the modules to look at (default: every module "${DEFAULT_MODULE}" whose
                      desired properties hold models: ${modelsQuery()})
  --device D          one gateway's module only
  --module M          module id (default "${DEFAULT_MODULE}"); with --query, only the modules
                      of this id among those it finds
  --sas-hours N       lifetime of the new URLs (default ${DEFAULT_SAS_HOURS}); keep it longer
                      than the time between runs plus H
  -h, --help          this help

Environment: PUMPWATCH_BLOB_CONNECTION_STRING with an account key (to sign the URLs),
PUMPWATCH_BLOB_CONTAINER, PUMPWATCH_IOTHUB_CONNECTION_STRING (service connection string).
Exit codes: 0 nothing failed (entries skipped included; no module matched too), 1 an entry
failed (its line's code says which), or the query or a twin read failed (PW_TRAINER_DEPLOY), or
signing is not configured (PW_TRAINER_NOT_CONFIGURED), 2 bad usage.`;

const OUTCOME = { refreshed: 'refreshed', skipped: 'skipped  ', failed: 'FAILED   ' } as const;

export const refreshUrlsCommand: Command = {
  name: 'refresh-urls',
  summary: 'sign again the model URLs of module twins that expire soon',
  help: HELP,
  async run(args, io, ctx) {
    const v = parseOptions('refresh-urls', args, {
      'within-hours': { type: 'string' },
      query: { type: 'string' },
      device: { type: 'string' },
      module: { type: 'string' },
      'sas-hours': { type: 'string' },
    });
    if (v.help === true) {
      io.out(HELP);
      return 0;
    }
    const withinHours = optionalNumber(v['within-hours'], '--within-hours', 0, 24 * 365) ?? DEFAULT_WITHIN_HOURS;
    const sasHours = optionalNumber(v['sas-hours'], '--sas-hours', 1, 24 * 365) ?? DEFAULT_SAS_HOURS;
    // A new URL that itself expires within the window would be signed again on every run.
    if (sasHours <= withinHours) throw new UsageError(`--sas-hours (${sasHours}) must be longer than --within-hours (${withinHours})`);
    const t = targetOf(v);
    const target = 'module' in t || 'query' in t ? t : { query: modelsQuery(t.moduleId) };
    const registry = ctx.registry();
    const container = ctx.models();
    checkCanSign(container);
    const now = ctx.now();
    // URLs signed before the registry had a container of its own point into the uploads' container
    const former = formerRegistry(ctx);
    const opts = { now, withinMs: withinHours * 3_600_000, expiresOn: new Date(now.getTime() + sasHours * 3_600_000), formerContainers: former === null ? [] : [former] };
    const print = (results: RefreshResult[]) => {
      for (const r of results) io.out(`${OUTCOME[r.outcome]} ${r.deviceId}/${r.moduleId} models.${r.key}: ${r.detail}`);
    };
    const summary = await refreshUrls(container, registry, target, opts, print);
    const count = (o: RefreshResult['outcome']) => summary.results.filter((r) => r.outcome === o).length;
    const failed = count('failed');
    io.out(
      `refresh-urls: ${summary.modules} module(s)${summary.modules === 0 ? ' matched' : ''}; ${count('refreshed')} URL(s) refreshed, ${count('skipped')} skipped, ${failed} failed; ` +
        `${summary.notExpiring} valid beyond ${withinHours} h left as they are`,
    );
    return failed > 0 ? 1 : 0;
  },
};

/** The uploads' container's URL (where the registry was before 2026-12-07), or null when it is not configured. */
function formerRegistry(ctx: CommandContext): string | null {
  try {
    return ctx.container().url;
  } catch {
    return null;
  }
}
