/**
 * The device side of IoT Hub over MQTT, for module identities: CONNECT authentication, twin
 * requests (GET, reported PATCH) answered on `$iothub/twin/res/…`, and module events recorded
 * as outputs. Answers go only to the requesting client.
 */
import { identityOf, type HubBroker, type ModuleIdentity } from './broker.js';
import { LocalHubError } from './errors.js';
import type { OutputLog, OutputMessage } from './messages.js';
import { verifySas } from './sas.js';
import { parseEventTopic, parseTwinRequest, twinResponseTopic } from './topics.js';
import type { JsonObject } from './json.js';
import type { TwinReadHold } from './read-hold.js';
import type { TwinStore } from './twin-store.js';

export const TWIN_RESPONSE_FILTER = '$iothub/twin/res/#';
export const DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';

export interface DeviceProtocolContext {
  hostName: string;
  store: TwinStore;
  outputs: OutputLog;
  broker(): HubBroker;
  onOutput(message: OutputMessage): void;
  onReported(identity: ModuleIdentity, patch: JsonObject, version: number): void;
  /** A test hook holding this module's twin reads, if any (LocalHub.holdTwinReads). */
  readHold(identity: ModuleIdentity): TwinReadHold | undefined;
  /** A test hook: whether to ignore this reported update (LocalHub.loseReportedUpdates). */
  loseReported(identity: ModuleIdentity): boolean;
  /** A test hook: whether to ignore this twin read (LocalHub.loseTwinReads). */
  loseRead(identity: ModuleIdentity): boolean;
}

/** Checks clientId `d/m`, username `{host}/{d}/{m}/?api-version=…` and the module's SAS password. */
export function authenticateModule(
  ctx: DeviceProtocolContext,
  clientId: string,
  username: string | undefined,
  password: Buffer | undefined,
): ModuleIdentity | { refused: string } {
  const id = identityOf(clientId);
  if (!id) return { refused: 'client id is not deviceId/moduleId' };
  const record = ctx.store.find(id.deviceId, id.moduleId);
  if (!record) return { refused: 'unknown module identity' };
  const slash = (username ?? '').indexOf('/');
  const host = (username ?? '').slice(0, Math.max(slash, 0));
  const rest = (username ?? '').slice(slash + 1);
  if (slash <= 0 || host.toLowerCase() !== ctx.hostName.toLowerCase() || !rest.startsWith(`${clientId}/?api-version=`)) {
    return { refused: 'username is not {hostName}/{deviceId}/{moduleId}/?api-version=…' };
  }
  const check = verifySas(password?.toString('utf8') ?? '', {
    keyBase64: record.key,
    resource: `${ctx.hostName}/devices/${id.deviceId}/modules/${id.moduleId}`,
  });
  return check.ok ? id : { refused: check.reason };
}

/** Handles one message a module published (already authorised for its topic). */
export function handleModulePublish(ctx: DeviceProtocolContext, id: ModuleIdentity, topic: string, payload: Buffer): void {
  const record = ctx.store.find(id.deviceId, id.moduleId);
  if (!record) return;
  record.lastActivityTime = new Date().toISOString();
  const clientId = `${id.deviceId}/${id.moduleId}`;
  const request = parseTwinRequest(topic);
  if (request?.kind === 'get') {
    if (ctx.loseRead(id)) return;
    const send = (body: string) => ctx.broker().sendDirect(clientId, TWIN_RESPONSE_FILTER, twinResponseTopic(200, request.rid), body);
    const view = () => JSON.stringify(ctx.store.deviceView(record));
    const hold = ctx.readHold(id);
    if (hold) hold.hold(send, view);
    else send(view());
    return;
  }
  if (request?.kind === 'reported') {
    if (ctx.loseReported(id)) return;
    try {
      const patch: unknown = JSON.parse(payload.toString('utf8'));
      const version = ctx.store.patchReported(record, patch);
      ctx.broker().sendDirect(clientId, TWIN_RESPONSE_FILTER, twinResponseTopic(204, request.rid, version), '');
      ctx.onReported(id, patch as JsonObject, version);
    } catch (err) {
      const message = err instanceof LocalHubError ? err.message : 'reported patch is not valid JSON';
      ctx.broker().sendDirect(clientId, TWIN_RESPONSE_FILTER, twinResponseTopic(400, request.rid), JSON.stringify({ errorCode: 400004, message }));
    }
    return;
  }
  const event = parseEventTopic(topic, id.deviceId, id.moduleId);
  if (event) {
    const message: OutputMessage = { ...id, ...event, body: Buffer.from(payload), receivedAt: new Date() };
    ctx.outputs.record(message);
    ctx.onOutput(message);
  }
}
