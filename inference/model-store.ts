/**
 * Model files on disk: `<root>/<key>/<version>.<sha256, first 16 hex digits>.onnx`, key = a pump
 * id or `default`. The cloud names a model by version and sha256, and the same version may come
 * back with other bytes (a hand-written entry, a re-used version name, a broken blob): naming the
 * file by both keeps those bytes from overwriting the model that runs, or the one a rollback goes
 * back to, before they were even loaded. A file is written to a temp name in the same folder,
 * flushed, then renamed over the final name, so a crash leaves either the whole file or none,
 * never half of one. The caller prunes by naming the models to keep (the active one, the one
 * before it, the shadow, the desired one); files being written, or held by an install in progress,
 * are never pruned. At start-up, before the desired models are known, only temp files and empty
 * folders go (pruneLeftovers).
 *
 * A download in progress keeps its bytes as `<file name>.download` (and `.download.json`: which
 * model they are, see partial-download.ts), so a download tried again later, after a restart
 * too, resumes from them. They are not temp files: pruneLeftovers keeps them; a prune deletes
 * those of models it does not keep.
 *
 * Agents before this layout stored `<key>/<version>.onnx`. Such a file is still read for a model
 * whose own file is missing, when its sha256 is the model's (it is then renamed to the new name),
 * and kept by a prune while a kept model has no file of its own, so an upgraded gateway restores
 * its models, and can roll back, without downloading them again.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Keys are pump ids or `default`; versions end up in file names: both restricted to safe characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const TEMP_SUFFIX = '.partial';
/** A download's bytes so far, and what they are (partial-download.ts). */
const DOWNLOAD_SUFFIXES = ['.download', '.download.json'];
/** Hex digits of the sha256 in a file name: enough to tell apart the files of one version, short enough for any file system. */
const SHA_IN_NAME = 16;

/** A stored model as the cloud names it: the desired entry's version and the file's sha256. */
export interface StoredModel {
  version: string;
  sha256: string;
}

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

/** The file name of a model, its name checked. */
function fileName(model: StoredModel): string {
  checkName('model version', model.version);
  const sha = model.sha256.toLowerCase();
  if (!SHA256.test(sha)) throw new ModelStoreError('PW_MODEL_STORE_NAME', `model sha256 ${JSON.stringify(model.sha256)} is not 64 hex digits`);
  return `${model.version}.${sha.slice(0, SHA_IN_NAME)}.onnx`;
}

/** The name agents before the sha256 in file names gave a version's file. */
const legacyName = (version: string): string => `${version}.onnx`;

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

export class ModelStore {
  /** Files (`<key>/<name>`) that a write or an install in progress needs: a prune leaves them. */
  private readonly pinned = new Map<string, number>();

  constructor(readonly root: string) {}

  pathOf(key: string, model: StoredModel): string {
    checkName('model key', key);
    return join(this.root, key, fileName(model));
  }

  /** Where a download of the model keeps the bytes received so far (DownloadOptions.partialPath). */
  downloadPathOf(key: string, model: StoredModel): string {
    return `${this.pathOf(key, model)}${DOWNLOAD_SUFFIXES[0]}`;
  }

  /**
   * Keeps the model's file (and its pre-upgrade name, and its download's bytes so far) from any prune until the returned function
   * is called: an install holds the model it downloads or reads from the first byte to its switch,
   * when the model becomes one the caller keeps, or to its failure.
   */
  hold(key: string, model: StoredModel): () => void {
    const names = [fileName(model), legacyName(model.version), ...DOWNLOAD_SUFFIXES.map((x) => fileName(model) + x)];
    for (const n of names) this.pin(key, n);
    let held = true;
    return () => {
      if (held) for (const n of names) this.unpin(key, n);
      held = false;
    };
  }

  /** Writes the file atomically (temp file, fsync, rename, fsync of the folder); returns its path. */
  async write(key: string, model: StoredModel, bytes: Uint8Array): Promise<string> {
    const path = this.pathOf(key, model);
    const dir = join(this.root, key);
    const tempName = `${fileName(model)}.${process.pid}.${Date.now()}${TEMP_SUFFIX}`;
    const temp = join(dir, tempName);
    this.pin(key, tempName);
    try {
      let fh;
      try {
        await mkdir(dir, { recursive: true });
        fh = await open(temp, 'w', 0o644);
      } catch (err) {
        // A prune that found the folder empty may have removed it between the two calls.
        if (!isMissing(err)) throw err;
        await mkdir(dir, { recursive: true });
        fh = await open(temp, 'w', 0o644);
      }
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
      throw new ModelStoreError('PW_MODEL_STORE_IO', `cannot write model ${key}/${model.version}: ${(err as Error).message}`);
    } finally {
      this.unpin(key, tempName);
    }
  }

  /** Reads a stored model; refuses a file whose content is not the model's (disk corruption, other bytes under its version). */
  async read(key: string, model: StoredModel): Promise<Uint8Array> {
    return (await this.load(key, model)).bytes;
  }

  /** The model's bytes, sha256-checked, and the file they were read from. */
  async load(key: string, model: StoredModel): Promise<{ bytes: Uint8Array; path: string }> {
    const path = this.pathOf(key, model);
    const sha = model.sha256.toLowerCase();
    const corrupt = (): ModelStoreError => new ModelStoreError('PW_MODEL_STORE_CORRUPT', `stored model ${key}/${model.version} does not match its sha256 any more`);
    let bytes = await this.readIfThere(key, model, path);
    if (bytes !== null) {
      if (sha256Hex(bytes) !== sha) throw corrupt();
      return { bytes, path };
    }
    const legacy = join(this.root, key, legacyName(model.version));
    bytes = await this.readIfThere(key, model, legacy);
    if (bytes !== null) {
      // Other bytes under the version (a file the old layout let another entry overwrite) are not this model.
      if (sha256Hex(bytes) !== sha) throw corrupt();
      // The file gets the new name, which a prune keeps for as long as the model is kept.
      try {
        await rename(legacy, path);
        await syncDir(join(this.root, key));
        return { bytes, path };
      } catch {
        return { bytes, path: legacy };
      }
    }
    // Neither name: a read running beside this one may have just renamed the old one.
    bytes = await this.readIfThere(key, model, path);
    if (bytes === null) throw new ModelStoreError('PW_MODEL_STORE_IO', `cannot read model ${key}/${model.version}: no file ${path}`);
    if (sha256Hex(bytes) !== sha) throw corrupt();
    return { bytes, path };
  }

  /** A file for the model is there (its own, or a pre-upgrade one under its version; read() checks the bytes). */
  async has(key: string, model: StoredModel): Promise<boolean> {
    for (const path of [this.pathOf(key, model), join(this.root, key, legacyName(model.version))]) {
      try {
        if ((await stat(path)).isFile()) return true;
      } catch {
        // not there
      }
    }
    return false;
  }

  /** Versions stored for a key (one per file: a version stored with two sha256s is listed twice). */
  async versions(key: string): Promise<string[]> {
    checkName('model key', key);
    try {
      const files = (await readdir(join(this.root, key))).filter((f) => f.endsWith('.onnx'));
      return files.map((f) => f.slice(0, -'.onnx'.length).replace(new RegExp(`\\.[0-9a-f]{${SHA_IN_NAME}}$`), ''));
    } catch {
      return [];
    }
  }

  /** The keys that have a folder in the store. */
  async keys(): Promise<string[]> {
    try {
      return (await readdir(this.root, { withFileTypes: true })).filter((d) => d.isDirectory() && NAME.test(d.name) && !d.name.includes('..')).map((d) => d.name);
    } catch {
      return [];
    }
  }

  /**
   * Deletes every model file of `key` not in `keep` (and the bytes of its downloads), and the temp files of interrupted writes,
   * but never a file a write or an install in progress holds; then the key's folder once empty.
   */
  async prune(key: string, keep: readonly StoredModel[]): Promise<void> {
    checkName('model key', key);
    const dir = join(this.root, key);
    let files: string[];
    try {
      files = await readdir(dir);
    } catch {
      return;
    }
    const present = new Set(files);
    const wanted = new Set<string>();
    for (const model of keep) {
      const name = fileName(model);
      wanted.add(name);
      // A download of it that a cut connection or a restart stopped resumes from these.
      for (const x of DOWNLOAD_SUFFIXES) wanted.add(name + x);
      // A model stored by an agent before the upgrade, not read since: its file under the old name is its only copy.
      if (!present.has(name)) wanted.add(legacyName(model.version));
    }
    let left = 0;
    for (const f of files) {
      const ours = f.endsWith('.onnx') || f.endsWith(TEMP_SUFFIX) || DOWNLOAD_SUFFIXES.some((x) => f.endsWith(x));
      if (wanted.has(f) || this.pinned.has(`${key}/${f}`) || !ours) left++;
      else await rm(join(dir, f), { force: true });
    }
    // A pump whose entry went leaves no empty folder; a write starting meanwhile makes the folder again.
    if (left === 0 && ![...this.pinned.keys()].some((p) => p.startsWith(`${key}/`))) await rmdir(dir).catch(() => undefined);
  }

  /**
   * Deletes what can never be used, in every key's folder: the temp files of writes a crash cut
   * short (not those of a write in progress), and a folder left with nothing in it. Complete model
   * files stay whatever their version: only the caller knows which to keep (prune).
   */
  async pruneLeftovers(): Promise<void> {
    for (const key of await this.keys()) {
      const dir = join(this.root, key);
      let files: string[];
      try {
        files = await readdir(dir);
      } catch {
        continue;
      }
      let left = 0;
      for (const f of files) {
        if (f.endsWith(TEMP_SUFFIX) && !this.pinned.has(`${key}/${f}`)) await rm(join(dir, f), { force: true });
        else left++;
      }
      if (left === 0 && ![...this.pinned.keys()].some((p) => p.startsWith(`${key}/`))) await rmdir(dir).catch(() => undefined);
    }
  }

  private async readIfThere(key: string, model: StoredModel, path: string): Promise<Uint8Array | null> {
    try {
      return await readFile(path);
    } catch (err) {
      if (isMissing(err)) return null;
      throw new ModelStoreError('PW_MODEL_STORE_IO', `cannot read model ${key}/${model.version}: ${(err as Error).message}`);
    }
  }

  private pin(key: string, name: string): void {
    const id = `${key}/${name}`;
    this.pinned.set(id, (this.pinned.get(id) ?? 0) + 1);
  }

  private unpin(key: string, name: string): void {
    const id = `${key}/${name}`;
    const n = (this.pinned.get(id) ?? 1) - 1;
    if (n > 0) this.pinned.set(id, n);
    else this.pinned.delete(id);
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
