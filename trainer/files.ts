/**
 * The trainer's local files: inputs it reads (a CSV, a model) and outputs it writes (a model, a
 * report). A path the user got wrong is answered in plain words that name the path, as bad input
 * (exit 2), never with an errno code and a stack trace.
 */
import type { Stats } from 'node:fs';
import { access, constants, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from './errors.js';

/** The errors a wrong path gives (anything else, a full disk say, is not the user's input). */
const PATH_ERRORS = ['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'EACCES', 'EPERM', 'EROFS', 'ENAMETOOLONG'];

/** Why reading `path` failed with `err`, in plain words. */
export async function readProblem(path: string, err: unknown): Promise<string> {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'it is a folder, not a file';
    case 'ENOTDIR':
      return (await fileInTheWay(path)) ?? 'part of the path is a file, not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return (err as Error).message;
  }
}

/**
 * Fails with a UsageError when `path` cannot be written as a file (`kind` "file") or filled with
 * files (`kind` "folder"), so that a long job stops before its work rather than after it.
 * `what` names the output in the message: "the model", "the report".
 */
export async function checkWritable(path: string, what: string, kind: 'file' | 'folder' = 'file'): Promise<void> {
  const problem = await writeProblem(path, kind);
  if (problem !== null) throw new UsageError(`cannot write ${what} to "${path}": ${problem}`);
}

/** Writes through a temporary file and a rename, creating parent folders; errors as checkWritable's. */
export async function writeAtomically(path: string, data: string | Uint8Array, what: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (!PATH_ERRORS.includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    throw new UsageError(`cannot write ${what} to "${path}": ${(await writeProblem(path, 'file')) ?? (err as Error).message}`);
  }
}

/** Why `path` cannot be written as a `kind`, or null when nothing on disk stands in the way. */
async function writeProblem(path: string, kind: 'file' | 'folder'): Promise<string | null> {
  try {
    const self = await statIfAny(path);
    if (self?.isDirectory() && kind === 'file') return 'it is a folder, not a file';
    if (self && !self.isDirectory() && kind === 'folder') return 'it is a file, not a folder';
    if (self && kind === 'folder') return await writableFolder(path);
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      const s = await statIfAny(dir);
      if (s) return s.isDirectory() ? await writableFolder(dir) : `"${dir}" is a file, not a folder`;
      if (dirname(dir) === dir) return null;
    }
  } catch (err) {
    return readProblem(path, err);
  }
}

/** The nearest parent of `path` that exists as a file, said as a reason, or null. */
async function fileInTheWay(path: string): Promise<string | null> {
  for (let dir = dirname(path); dirname(dir) !== dir; dir = dirname(dir)) {
    const s = await statIfAny(dir).catch(() => undefined);
    if (s) return s.isDirectory() ? null : `"${dir}" is a file, not a folder`;
  }
  return null;
}

async function writableFolder(dir: string): Promise<string | null> {
  try {
    await access(dir, constants.W_OK);
    return null;
  } catch {
    return `no permission to write in "${dir}"`;
  }
}

/** The path's stats; undefined when nothing is there (or a parent is a file). */
async function statIfAny(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
