import { join } from 'node:path';
import { buildVersion } from '../lib/build-info.js';
import { packageRoot } from '../lib/package-root.js';

export { packageRoot };

/** The running build, `0.1.0+<12 hex>` (lib/build-info.ts): /status, the twin's reported state and the blobs' metadata. */
export function agentVersion(): string {
  return buildVersion();
}

/** The default model shipped with the agent (made by `npm run make:default-model`). */
export function bundledModelPath(): string {
  return join(packageRoot(), 'agent', 'assets', 'default-model.onnx');
}
