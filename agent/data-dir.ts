/**
 * PUMPWATCH_DATA_DIR made at start-up, one missing folder at a time, before anything else creates
 * folders in it with node's recursive mkdir. Under a filesystem that refuses new folders with
 * ENOENT though their parent exists (/proc), that mkdir loops for ever: PUMPWATCH_DATA_DIR=/proc/nope
 * kept the agent at 100 % CPU with no output, and SIGTERM did not end it. Here each level is made by
 * a plain mkdir, so a folder that cannot be made is an error at once: a ConfigError (exit 2) naming
 * the variable when the setting itself is wrong (a file on the path, a filesystem that takes no
 * folders). A folder this process may not write, or a read-only volume, is left to the buffer,
 * which names the owner or the volume and opens once it is fixed.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CONFIG_KEYS, ConfigError } from './config.js';

/** Errors a plain mkdir may give that heal, or that the buffer explains better (owner, volume). */
const LEFT_TO_THE_BUFFER = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT']);

export function prepareDataDir(configured: string): void {
  const refuse = (why: string): never => {
    throw new ConfigError([`${CONFIG_KEYS.dataDir.env}=${JSON.stringify(configured)}: ${why}`]);
  };
  // The missing folders, from the nearest existing one down.
  const missing: string[] = [];
  let path = resolve(configured);
  for (;;) {
    let st;
    try {
      st = statSync(path, { throwIfNoEntry: false });
    } catch (err) {
      // ENOTDIR: a file above it on the path, found as the walk goes up; EACCES: a folder above it
      // this process may not search.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && LEFT_TO_THE_BUFFER.has(code)) return;
      if (code !== 'ENOTDIR') throw err;
    }
    if (st !== undefined) {
      if (!st.isDirectory()) refuse(`${path} is a file, not a folder${path === resolve(configured) ? '' : ' (the path goes through it)'}`);
      break;
    }
    missing.unshift(path);
    const parent = dirname(path);
    if (parent === path) break; // the root itself missing: mkdir says why
    path = parent;
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue; // made meanwhile
      if (code !== undefined && LEFT_TO_THE_BUFFER.has(code)) return;
      // ENOENT with the parent there: a virtual filesystem (/proc, /sys) that takes no new folders.
      const why = code === 'ENOENT' ? `the filesystem of ${dirname(folder)} takes no new folders (a virtual one, such as /proc or /sys?)` : (err as Error).message;
      refuse(`cannot create the folder ${folder}: ${why}; set it to a folder on a writable volume (the container's is /data)`);
    }
  }
}
