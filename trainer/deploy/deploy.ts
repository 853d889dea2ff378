/**
 * `deploy`: a registered version (the best by default) → read-only expiring URL → the module
 * twins of the chosen gateways. Every target is tried; the result lists each one.
 *
 * In two steps, so that `rollback` can know everything a deploy needs before it moves best.json:
 * `resolveDeploy` reads the version's record, checks that its model blob is there with the
 * recorded size and sha256 (read and hashed), and finds the target modules (changes nothing); `pushDeploy` signs the URL and
 * writes the twins, each only when its agent reports that it reads the model's contract and rules
 * (agent-reads.ts), unless `force`.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { TwinDocument, TwinRegistry } from '../cloud/context.js';
import { failureDetail, TrainerError } from '../errors.js';
import type { ModelRecord } from '../registry/records.js';
import { readBestRecord } from '../registry/best-record.js';
import { checkModelBlob } from '../registry/model-blob.js';
import { readModelRecord } from '../registry/read.js';
import { modelNeeds, unreadableBy, type ModelNeeds } from './agent-reads.js';
import { readOnlyUrl } from './sas.js';
import { defaultQuery, setDesiredModel, targetModules, type ModuleRef, type ModuleTarget } from './twin.js';

export interface DeployRequest {
  source: string;
  /** A registered version; default: the one best.json points at. */
  version?: string;
  /**
   * One module, or a query (its results filtered to `moduleId` when given: `--query … --module M`),
   * or (neither) the modules that serve the source (twin.ts defaultQuery).
   */
  target: ModuleTarget | { moduleId: string };
  shadow: boolean;
  expiresOn: Date;
  /** Deploy also to modules whose agent reports it does not read the model (each with a warning). */
  force: boolean;
}

/** A deploy whose version, model blob and target modules are known; nothing written yet. */
export interface ResolvedDeploy {
  version: string;
  record: ModelRecord;
  /** What the model asks of the agents: its contract and rules, from its bytes. */
  needs: ModelNeeds;
  modules: ModuleRef[];
  /** Modules the query found that are not `--module` (left out). */
  skipped: number;
  moduleFilter: string | null;
}

export interface DeployResult {
  version: string;
  blob: string;
  /** `warning`: written with --force although its agent does not read the model (why). */
  targets: Array<ModuleRef & { ok: boolean; detail: string; warning?: string }>;
  skipped: number;
  moduleFilter: string | null;
}

/**
 * The record of the version (given, else best.json's, cross-checked with its model.json), its
 * model blob checked (exists, recorded size and sha256: a blob of other bytes would be refused by
 * every gateway), and the target modules. `record`: already read
 * and checked by the caller (rollback).
 */
export async function resolveDeploy(container: ContainerClient, registry: TwinRegistry, req: Pick<DeployRequest, 'source' | 'version' | 'target'>, record?: ModelRecord): Promise<ResolvedDeploy> {
  if (!record) {
    if (req.version !== undefined) record = await readModelRecord(container, req.source, req.version);
    else {
      const best = await readBestRecord(container, req.source);
      if (!best) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${req.source}" (models/${req.source}/best.json is absent); train one or pass --version`);
      record = best.record;
    }
  }
  const needs = modelNeeds(await checkModelBlob(container, record), record.model.blob);
  const t = req.target;
  // Neither a module nor a query: the default query, which already names the module.
  const target = 'module' in t || 'query' in t ? t : { query: defaultQuery(req.source, t.moduleId, record.data.devices) };
  return { version: record.version, record, needs, ...(await targetModules(registry, target)) };
}

/** Signs a read-only URL for the model blob and sets it in the twin of every resolved module. */
export async function pushDeploy(container: ContainerClient, registry: TwinRegistry, resolved: ResolvedDeploy, req: Pick<DeployRequest, 'source' | 'shadow' | 'expiresOn' | 'force'>): Promise<DeployResult> {
  const { version, record } = resolved;
  const base = { version, blob: record.model.blob, skipped: resolved.skipped, moduleFilter: resolved.moduleFilter };
  if (resolved.modules.length === 0) return { ...base, targets: [] };
  const url = await readOnlyUrl(container, record.model.blob, req.expiresOn);
  const entry = { version, url, sha256: record.model.sha256, size: record.model.size, shadow: req.shadow ? true : null };
  const targets: DeployResult['targets'] = [];
  for (const module of resolved.modules) {
    // Checked on the twin read for the conditional update itself: what the agent reports as the entry is written.
    let warning: string | undefined;
    const check = (twin: TwinDocument): void => {
      const problem = unreadableBy(twin, module, resolved.needs);
      warning = problem === null ? undefined : `PW_TRAINER_AGENT_TOO_OLD: ${problem}; written anyway (--force-old-agents): the agent will report it rejected and keep its current model`;
      if (problem !== null && !req.force) {
        throw new TrainerError('PW_TRAINER_AGENT_TOO_OLD', `${problem}: not updated, the agent would report the model rejected and keep its current one; upgrade the agent, or deploy a model it reads (--force-old-agents writes it anyway)`);
      }
    };
    try {
      const desiredVersion = await setDesiredModel(registry, module, req.source, entry, check);
      const detail = `desired models.${req.source} = ${version}${req.shadow ? ' (shadow)' : ''}${desiredVersion !== null ? `, $version ${desiredVersion}` : ''}`;
      targets.push({ ...module, ok: true, detail, ...(warning === undefined ? {} : { warning }) });
    } catch (err) {
      // Its code first, as every other failure the trainer prints: a full twin (PW_TRAINER_TWIN_FULL) needs a person, a refused update may pass later.
      targets.push({ ...module, ok: false, detail: failureDetail(err, 'PW_TRAINER_DEPLOY') });
    }
  }
  return { ...base, targets };
}
