import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The package's root folder (works from the sources under vitest and from dist/). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the agent');
    dir = up;
  }
  root = dir;
  return dir;
}

export function agentVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The default model shipped with the agent (made by `npm run make:default-model`). */
export function bundledModelPath(): string {
  return join(packageRoot(), 'agent', 'assets', 'default-model.onnx');
}
