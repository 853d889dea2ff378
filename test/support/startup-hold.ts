/**
 * A `node --require` preload for tests of the agent process's start-up: the process stops,
 * synchronously, where onnxruntime-node is first loaded (deep in the entry point's imports, after
 * agent/early.ts has run), writes `held` and goes on once `release` exists. A test thus sends a
 * signal at a known point of start-up, with no sleep. `held` holds the process's
 * ORT_DISABLE_TELEMETRY at that moment. Nothing here is read by the agent itself: the preload is
 * written into the test's folder as plain CommonJS (node runs it before any TypeScript is built).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const PRELOAD = `
const { existsSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const held = process.env.PUMPWATCH_TEST_HELD_FILE;
const release = process.env.PUMPWATCH_TEST_RELEASE_FILE;
const load = Module._load;
const pause = new Int32Array(new SharedArrayBuffer(4));
let holding = held !== undefined && release !== undefined;
Module._load = function (request, ...rest) {
  if (holding && String(request).includes('onnxruntime-node')) {
    holding = false;
    writeFileSync(held, JSON.stringify({ ORT_DISABLE_TELEMETRY: process.env.ORT_DISABLE_TELEMETRY ?? null }));
    while (!existsSync(release)) Atomics.wait(pause, 0, 0, 10);
  }
  return load.call(this, request, ...rest);
};
`;

export interface StartupHold {
  /** node's options that load the preload. */
  nodeArgs: string[];
  /** The environment that tells it where to write and what to wait for. */
  env: Record<string, string>;
  /** Written when the process is held. */
  held: string;
  /** Lets the process go on. */
  release: () => void;
}

export function startupHold(dir: string): StartupHold {
  const preload = join(dir, 'startup-hold.cjs');
  writeFileSync(preload, PRELOAD);
  const held = join(dir, 'held.json');
  const release = join(dir, 'release');
  return {
    nodeArgs: ['--require', preload],
    env: { PUMPWATCH_TEST_HELD_FILE: held, PUMPWATCH_TEST_RELEASE_FILE: release },
    held,
    release: () => writeFileSync(release, ''),
  };
}

/**
 * A `node --import` preload whose ES module loader hook holds the process where the module whose
 * URL ends with `urlEnd` is first loaded (the hook waits, in the loader's own thread, for `release`
 * to exist, having written `held`). Unlike startupHold, the hold may come while node still loads
 * and links the entry point's static imports, before any of them has run: where a module is
 * loaded is what a test of start-up's first moments asks.
 */
export function moduleLoadHold(dir: string, urlEnd: string): StartupHold {
  const hooks = join(dir, 'module-load-hold-hooks.mjs');
  const preload = join(dir, 'module-load-hold.mjs');
  const held = join(dir, 'load-held');
  const release = join(dir, 'load-release');
  writeFileSync(
    hooks,
    `import { existsSync, writeFileSync } from 'node:fs';
let holding = true;
export async function load(url, context, next) {
  if (holding && url.endsWith(${JSON.stringify(urlEnd)})) {
    holding = false;
    writeFileSync(${JSON.stringify(held)}, url);
    while (!existsSync(${JSON.stringify(release)})) await new Promise((r) => setTimeout(r, 10));
  }
  return next(url, context);
}
`,
  );
  writeFileSync(preload, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  return { nodeArgs: ['--import', pathToFileURL(preload).href], env: {}, held, release: () => writeFileSync(release, '') };
}
