/**
 * Writes dist/build-info.json (lib/build-info.ts): run by `npm run build` after tsc, in a checkout
 * and in the image's build stage. `node dist/lib/write-build-info.js [ROOT [OUT]]`: the sources
 * of ROOT (default: this package), written to OUT (default ROOT/dist/build-info.json); prints
 * the version it wrote.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BUILD_INFO_FILE, makeBuildInfo } from './build-info.js';
import { packageRoot } from './package-root.js';

const root = resolve(process.argv[2] ?? packageRoot());
const out = resolve(process.argv[3] ?? join(root, 'dist', BUILD_INFO_FILE));
const info = makeBuildInfo(root);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(info, null, 2)}\n`);
process.stdout.write(`${info.version}+${info.build}\n`);
