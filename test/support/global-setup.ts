import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * e2e tests run the agent and the trainer as real processes from dist/: compile once before the
 * suite so they never run stale code. Type errors fail here, before any test.
 */
export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (process.env.PUMPWATCH_TEST_SKIP_BUILD === '1') return;
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  // as `npm run build` does: the bins report this build's id (lib/build-info.ts), not another's left in dist/
  execFileSync(process.execPath, [join(root, 'dist', 'lib', 'write-build-info.js')], { cwd: root, stdio: 'inherit' });
}
