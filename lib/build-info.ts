/**
 * Which build of PumpWatch is running. package.json says 0.1.0 for every build, so /status, the
 * twin's reported agentVersion, the blobs' agentversion metadata and model.json could not tell two
 * builds apart. The build (`npm run build`: lib/write-build-info.ts after tsc) writes
 * dist/build-info.json with the package version and a short sha256 over the sources that ship,
 * and every part reports `<version>+<12 hex>` (semver build metadata). The id is computed from
 * file contents and paths only (sorted, no dates, no git: the image build copies the sources
 * without .git), so the same sources give the same id on any machine, in a checkout or in the
 * image's build stage.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './package-root.js';

export const BUILD_INFO_FILE = 'build-info.json';

/** What is reported when dist/ holds no build-info.json (TypeScript run from the sources, as under vitest, or a bare tsc). */
export const UNBUILT = 'unbuilt';

/** The folders whose TypeScript is compiled into dist/ and run. */
const SOURCE_DIRS = ['agent', 'inference', 'buffer', 'sync', 'lib', 'trainer'];

/**
 * A file that ships: a folder's .ts (not a test), the bundled model, the technician page's static
 * files. Left out as .dockerignore leaves them out of the image build (Markdown, the page's
 * screenshot), and what only makes an asset (make-default-model.sh), so a checkout and the
 * image's build stage hash the same files.
 */
function ships(path: string): boolean {
  if (path.endsWith('.ts')) return !path.endsWith('.test.ts');
  if (path === 'agent/assets/default-model.onnx') return true;
  return path.startsWith('agent/page/') && !path.endsWith('.md') && path !== 'agent/page/screenshot.png';
}

/** The shipped files under `root`, as `/`-separated paths relative to it, sorted. */
export function shippedFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && ships(path)) found.push(path);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return found.sort();
}

/** The first 12 hex digits of a sha256 over each shipped file's path and content. */
export function buildId(root: string): string {
  const h = createHash('sha256');
  for (const path of shippedFiles(root)) {
    const body = readFileSync(join(root, path));
    // path and length first: a file renamed, or bytes moved from one file to the next, changes the id
    h.update(`${path}\0${body.length}\0`);
    h.update(body);
  }
  return h.digest('hex').slice(0, 12);
}

export interface BuildInfo {
  /** package.json's version. */
  version: string;
  /** buildId of the sources the build compiled. */
  build: string;
}

export function packageVersion(root: string): string {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

export function makeBuildInfo(root: string): BuildInfo {
  return { version: packageVersion(root), build: buildId(root) };
}

let cached: string | null = null;

/**
 * `0.1.0+4bb88f9bf6bd`: the version of the running build, from the build-info.json beside the
 * compiled code (dist/lib/build-info.js reads dist/build-info.json). Run from the sources there
 * is none (lib/../build-info.json), nor in a dist/ only ever built by a bare tsc: the package
 * version with `+unbuilt`, never a crash. (A bare tsc over an earlier `npm run build` leaves that
 * build's file in place: README.md says to build with npm run build.)
 */
export function buildVersion(): string {
  if (cached !== null) return cached;
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', BUILD_INFO_FILE);
  let info: Partial<BuildInfo> = {};
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as Partial<BuildInfo>;
  } catch {
    // no build-info.json (or not JSON): reported as unbuilt below
  }
  const ok = typeof info.version === 'string' && typeof info.build === 'string' && /^[0-9a-f]{12}$/.test(info.build);
  cached = ok ? `${info.version}+${info.build}` : `${packageVersion(packageRoot())}+${UNBUILT}`;
  return cached;
}
