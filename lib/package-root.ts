/**
 * The package's root folder, the one holding package.json, from the sources under vitest and from
 * dist/ alike. Here, in `lib/` (imports nothing of ours), so the trainer finds it too without
 * importing the agent.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

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
