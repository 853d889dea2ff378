/** The local IoT hub for development and tests; load with a dynamic import (aedes and selfsigned are devDependencies). */
export { LocalHub, SERVICE_KEY_NAME, type LocalHubEvents, type LocalHubOptions } from './local-hub.js';
export { attachRegistry } from './registry.js';
export { LocalHubError, type LocalHubErrorCode } from './errors.js';
export type { OutputMessage } from './messages.js';
export type { ModuleTwinDocument } from './twin-store.js';
export type { Json, JsonObject } from './json.js';
export type { ModuleIdentity } from './broker.js';
export type { TwinReadHold, AnswerAt } from './read-hold.js';
