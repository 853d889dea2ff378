/**
 * IoT Hub's MQTT topics for a module identity, as azure-iot-device-mqtt uses them:
 * - twin: publish `$iothub/twin/GET/?$rid=R` and `$iothub/twin/PATCH/properties/reported/?$rid=R`,
 *   subscribe `$iothub/twin/res/#` and `$iothub/twin/PATCH/properties/desired/#`;
 * - methods: subscribe `$iothub/methods/POST/#`, publish `$iothub/methods/res/{status}/?$rid=R`;
 * - inputs: subscribe `devices/{d}/modules/{m}/inputs/#`, delivered on
 *   `devices/{d}/modules/{m}/inputs/{input}/{url-encoded property bag}`;
 * - events/outputs: publish `devices/{d}/modules/{m}/messages/events/{property bag}` (`$.on` = output name).
 */

export type TwinRequest =
  | { kind: 'get'; rid: string }
  | { kind: 'reported'; rid: string };

export interface EventTopic {
  outputName: string | null;
  /** Application properties (user keys). */
  properties: Record<string, string>;
  /** System properties (`$.mid`, `$.cid`, `$.ct`, `$.ce`, `$.on`, …). */
  systemProperties: Record<string, string>;
}

export function moduleBase(deviceId: string, moduleId: string): string {
  return `devices/${deviceId}/modules/${moduleId}`;
}

/** The subscriptions a module may hold: its own inputs, twin responses, desired patches, methods. */
export function allowedSubscription(filter: string, deviceId: string, moduleId: string): boolean {
  return (
    filter === '$iothub/twin/res/#' ||
    filter === '$iothub/twin/PATCH/properties/desired/#' ||
    filter === '$iothub/methods/POST/#' ||
    filter === `${moduleBase(deviceId, moduleId)}/inputs/#`
  );
}

/** The topics a module may publish to: twin requests, method responses, its own events. */
export function allowedPublish(topic: string, deviceId: string, moduleId: string): boolean {
  return (
    topic.startsWith('$iothub/twin/GET/?') ||
    topic.startsWith('$iothub/twin/PATCH/properties/reported/?') ||
    topic.startsWith('$iothub/methods/res/') ||
    topic.startsWith(`${moduleBase(deviceId, moduleId)}/messages/events/`)
  );
}

/** What the broker may forward to a module: its inputs, its twin responses and desired patches. */
export function allowedDelivery(topic: string, deviceId: string, moduleId: string): boolean {
  return (
    topic.startsWith('$iothub/twin/res/') ||
    topic.startsWith('$iothub/twin/PATCH/properties/desired/') ||
    topic.startsWith(`${moduleBase(deviceId, moduleId)}/inputs/`)
  );
}

function queryOf(topic: string): URLSearchParams {
  const q = topic.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : topic.slice(q + 1));
}

export function parseTwinRequest(topic: string): TwinRequest | null {
  const rid = queryOf(topic).get('$rid');
  if (!rid) return null;
  if (topic.startsWith('$iothub/twin/GET/?')) return { kind: 'get', rid };
  if (topic.startsWith('$iothub/twin/PATCH/properties/reported/?')) return { kind: 'reported', rid };
  return null;
}

export function twinResponseTopic(status: number, rid: string, version?: number): string {
  const v = version === undefined ? '' : `&$version=${version}`;
  return `$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${v}`;
}

export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

/** Topic of an input message; every key and value URL-encoded, as the SDK decodes them. */
export function inputTopic(deviceId: string, moduleId: string, inputName: string, bag: Record<string, string>): string {
  const encoded = Object.entries(bag)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return `${moduleBase(deviceId, moduleId)}/inputs/${inputName}/${encoded}`;
}

/** The `$.mid` in an input topic, or null. */
export function inputMessageId(topic: string): string | null {
  const bag = topic.slice(topic.lastIndexOf('/') + 1);
  for (const pair of bag.split('&')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && decodeURIComponent(pair.slice(0, eq)) === '$.mid') return decodeURIComponent(pair.slice(eq + 1));
  }
  return null;
}

/** Splits `devices/{d}/modules/{m}/messages/events/{bag}[/]` into output name and properties. */
export function parseEventTopic(topic: string, deviceId: string, moduleId: string): EventTopic | null {
  const prefix = `${moduleBase(deviceId, moduleId)}/messages/events/`;
  if (!topic.startsWith(prefix)) return null;
  const bag = topic.slice(prefix.length).replace(/\/$/, '');
  const properties: Record<string, string> = {};
  const systemProperties: Record<string, string> = {};
  for (const pair of bag.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value = safeDecode(eq < 0 ? '' : pair.slice(eq + 1));
    if (key === null || value === null) return null;
    (key.startsWith('$.') ? systemProperties : properties)[key] = value;
  }
  return { outputName: systemProperties['$.on'] ?? null, properties, systemProperties };
}

function safeDecode(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}
