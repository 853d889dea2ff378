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
