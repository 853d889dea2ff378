/**
 * `deploy`: a registered version (the best by default) → read-only expiring URL → the module
 * twins of the chosen gateways. Every target is tried; the result lists each one.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { TwinRegistry } from '../cloud/context.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { TrainerError } from '../errors.js';
import { readBest, readModelRecord } from '../registry/registry.js';
import { readOnlyUrl } from './sas.js';
import { defaultQuery, findModules, setDesiredModel, type ModuleRef } from './twin.js';

export interface DeployRequest {
  source: string;
  /** A registered version; default: the one best.json points at. */
  version?: string;
  /** One module, or a query, or (neither) the modules that serve the source (twin.ts defaultQuery). */
  target: { module: ModuleRef } | { query: string } | { moduleId: string };
  shadow: boolean;
  expiresOn: Date;
}

export interface DeployResult {
  version: string;
  blob: string;
  targets: Array<ModuleRef & { ok: boolean; detail: string }>;
}

export async function deployModel(container: ContainerClient, registry: TwinRegistry, req: DeployRequest): Promise<DeployResult> {
  const version = req.version ?? (await readBest(container, req.source))?.pointer.version;
  if (version === undefined) throw new TrainerError('PW_TRAINER_NO_MODEL', `no model was promoted for "${req.source}" (models/${req.source}/best.json is absent); train one or pass --version`);
  const record = await readModelRecord(container, req.source, version);
  const url = await readOnlyUrl(container, record.model.blob, req.expiresOn);
  const modules = 'module' in req.target ? [req.target.module] : await findModules(registry, 'query' in req.target ? req.target.query : defaultQuery(req.source, req.target.moduleId, record.data.devices));
  const entry = { version, url, sha256: record.model.sha256, size: record.model.size, shadow: req.shadow ? true : null };
  const targets: DeployResult['targets'] = [];
  for (const module of modules) {
    try {
      const desiredVersion = await setDesiredModel(registry, module, req.source, entry);
      targets.push({ ...module, ok: true, detail: `desired models.${req.source} = ${version}${req.shadow ? ' (shadow)' : ''}${desiredVersion !== null ? `, $version ${desiredVersion}` : ''}` });
    } catch (err) {
      targets.push({ ...module, ok: false, detail: safeErrorMessage(err) });
    }
  }
  return { version, blob: record.model.blob, targets };
}
