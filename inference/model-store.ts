/**
 * Model files on disk: `<root>/<key>/<version>.onnx`, key = a pump id or `default`. A file is
 * written to a temp name in the same folder, flushed, then renamed over the final name, so a
 * crash leaves either the whole file or none, never half of one. Old versions are pruned by the
 * caller naming what to keep (the active model and the one before it).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Keys are pump ids or `default`; versions end up in file names: both restricted to safe characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const TEMP_SUFFIX = '.partial';

export class ModelStoreError extends Error {
  constructor(
    readonly code: 'PW_MODEL_STORE_NAME' | 'PW_MODEL_STORE_IO' | 'PW_MODEL_STORE_CORRUPT',
    message: string,
  ) {
    super(message);
    this.name = 'ModelStoreError';
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkName(what: string, name: string): void {
  if (!NAME.test(name) || name.includes('..')) {
    throw new ModelStoreError('PW_MODEL_STORE_NAME', `${what} ${JSON.stringify(name)} is not a safe file name (letters, digits, . _ : -)`);
  }
}

export class ModelStore {
  constructor(readonly root: string) {}

  pathOf(key: string, version: string): string {
    checkName('model key', key);
    checkName('model version', version);
    return join(this.root, key, `${version}.onnx`);
  }

  /** Writes the file atomically (temp file, fsync, rename, fsync of the folder); returns its path. */
  async write(key: string, version: string, bytes: Uint8Array): Promise<string> {
    const path = this.pathOf(key, version);
    const dir = join(this.root, key);
    const temp = `${path}.${process.pid}.${Date.now()}${TEMP_SUFFIX}`;
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(temp, 'w', 0o644);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, path);
      await syncDir(dir);
      return path;
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw new ModelStoreError('PW_MODEL_STORE_IO', `cannot write model ${key}/${version}: ${(err as Error).message}`);
    }
  }

  /** Reads a stored model; with `sha256`, refuses a file whose content no longer matches (disk corruption). */
  async read(key: string, version: string, sha256?: string): Promise<Uint8Array> {
    const path = this.pathOf(key, version);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new ModelStoreError('PW_MODEL_STORE_IO', `cannot read model ${key}/${version}: ${(err as Error).message}`);
    }
    if (sha256 !== undefined && sha256Hex(bytes) !== sha256.toLowerCase()) {
      throw new ModelStoreError('PW_MODEL_STORE_CORRUPT', `stored model ${key}/${version} does not match its sha256 any more`);
    }
    return bytes;
  }

  async has(key: string, version: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key, version))).isFile();
    } catch {
      return false;
    }
  }

  /** Versions stored for a key. */
  async versions(key: string): Promise<string[]> {
    checkName('model key', key);
    try {
      return (await readdir(join(this.root, key))).filter((f) => f.endsWith('.onnx')).map((f) => f.slice(0, -'.onnx'.length));
    } catch {
      return [];
    }
  }

  /** Deletes every version of `key` not in `keep`, and leftover temp files of interrupted writes. */
  async prune(key: string, keep: readonly string[]): Promise<void> {
    checkName('model key', key);
    const dir = join(this.root, key);
    let files: string[];
    try {
      files = await readdir(dir);
    } catch {
      return;
    }
    const wanted = new Set(keep.map((v) => `${v}.onnx`));
    for (const f of files) {
      if (wanted.has(f)) continue;
      if (f.endsWith('.onnx') || f.endsWith(TEMP_SUFFIX)) await rm(join(dir, f), { force: true });
    }
  }
}

/** Makes a rename durable: fsync of the folder (not supported on every platform; best effort there). */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Windows and some file systems refuse to open or fsync a directory.
  } finally {
    await fh?.close();
  }
}
