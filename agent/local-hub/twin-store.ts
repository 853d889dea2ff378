/** Module identities and their twins, in memory: the state a LocalHub keeps across broker restarts. */
import { LocalHubError, assertId } from './errors.js';
import { TWIN_SECTION_LIMITS, deepCopy, mergePatchWithin, validatePatch, type JsonObject } from './json.js';

export interface ModuleRecord {
  readonly deviceId: string;
  readonly moduleId: string;
  readonly key: string;
  tags: JsonObject;
  desired: JsonObject;
  desiredVersion: number;
  reported: JsonObject;
  reportedVersion: number;
  /** Bumped on every change to tags, desired or reported; the etag is derived from it. */
  version: number;
  connected: boolean;
  lastActivityTime: string;
}

/** The module twin as the service REST API returns it (the subset this hub keeps). */
export interface ModuleTwinDocument {
  deviceId: string;
  moduleId: string;
  etag: string;
  version: number;
  status: 'enabled';
  connectionState: 'Connected' | 'Disconnected';
  lastActivityTime: string;
  authenticationType: 'sas';
  tags: JsonObject;
  properties: { desired: JsonObject; reported: JsonObject };
}

const EPOCH = '0001-01-01T00:00:00Z';

/** IoT Hub etags are opaque base64 strings; here the base64 of the twin version. */
export function etagOf(version: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(version));
  return bytes.toString('base64');
}

export class TwinStore {
  private readonly modules = new Map<string, ModuleRecord>();

  add(deviceId: string, moduleId: string, key: string): ModuleRecord {
    assertId('deviceId', deviceId);
    assertId('moduleId', moduleId);
    const id = `${deviceId}/${moduleId}`;
    if (this.modules.has(id)) {
      throw new LocalHubError('PW_LOCALHUB_MODULE_EXISTS', `module ${id} is already registered`);
    }
    const record: ModuleRecord = {
      deviceId, moduleId, key,
      tags: {}, desired: {}, desiredVersion: 1, reported: {}, reportedVersion: 1,
      version: 1, connected: false, lastActivityTime: EPOCH,
    };
    this.modules.set(id, record);
    return record;
  }

  find(deviceId: string, moduleId: string): ModuleRecord | undefined {
    return this.modules.get(`${deviceId}/${moduleId}`);
  }

  /** The record of a module; throws PW_LOCALHUB_UNKNOWN_MODULE when it was never added. */
  get(deviceId: string, moduleId: string): ModuleRecord {
    const record = this.find(deviceId, moduleId);
    if (!record) {
      throw new LocalHubError('PW_LOCALHUB_UNKNOWN_MODULE', `module ${deviceId}/${moduleId} is not registered in the local hub`);
    }
    return record;
  }

  all(): ModuleRecord[] {
    return [...this.modules.values()];
  }

  /** Merges a desired patch (null deletes) and returns the new desired `$version`; over 32 KB: PW_LOCALHUB_TWIN_TOO_LARGE. */
  patchDesired(record: ModuleRecord, patch: unknown): number {
    mergePatchWithin(record.desired, validatePatch(patch, 'properties.desired'), TWIN_SECTION_LIMITS.desired, 'properties.desired');
    record.desiredVersion += 1;
    record.version += 1;
    return record.desiredVersion;
  }

  /** Merges a reported patch (null deletes) and returns the new reported `$version`; over 32 KB: PW_LOCALHUB_TWIN_TOO_LARGE. */
  patchReported(record: ModuleRecord, patch: unknown): number {
    mergePatchWithin(record.reported, validatePatch(patch, 'properties.reported'), TWIN_SECTION_LIMITS.reported, 'properties.reported');
    record.reportedVersion += 1;
    record.version += 1;
    return record.reportedVersion;
  }

  patchTags(record: ModuleRecord, patch: unknown): void {
    mergePatchWithin(record.tags, validatePatch(patch, 'tags'), TWIN_SECTION_LIMITS.tags, 'tags');
    record.version += 1;
  }

  /** What the device reads with `$iothub/twin/GET`: desired and reported, each with its `$version`. */
  deviceView(record: ModuleRecord): { desired: JsonObject; reported: JsonObject } {
    return {
      desired: { ...deepCopy(record.desired), $version: record.desiredVersion },
      reported: { ...deepCopy(record.reported), $version: record.reportedVersion },
    };
  }

  document(record: ModuleRecord): ModuleTwinDocument {
    return {
      deviceId: record.deviceId,
      moduleId: record.moduleId,
      etag: etagOf(record.version),
      version: record.version,
      status: 'enabled',
      connectionState: record.connected ? 'Connected' : 'Disconnected',
      lastActivityTime: record.lastActivityTime,
      authenticationType: 'sas',
      tags: deepCopy(record.tags),
      properties: this.deviceView(record),
    };
  }
}
