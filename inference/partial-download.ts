/**
 * The bytes of a model download received so far, kept on disk so that a download tried again
 * later (the updater's next round, a restart of the agent) asks the server only for the rest
 * with a Range request, instead of starting from byte 0. Beside the bytes, `<path>.json` says
 * which model they are (the desired entry's sha256 and size) and what the server called them
 * (ETag, Last-Modified): bytes kept for another model, or under other validators, are never
 * resumed onto. The caller still checks the sha256 of the whole file at the end.
 *
 * Best effort: a file that cannot be written (disk full, read-only volume) only means the next
 * try starts from byte 0 again, as before; the download itself goes on in memory.
 */
import { mkdir, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What the server called the bytes, for a resume onto the same ones only. */
export interface Validators {
  etag: string | null;
  lastModified: string | null;
}

interface Info extends Validators {
  sha256: string;
  size: number;
}

/** File names of a partial download: the bytes, and what they are. */
export const partialFiles = (path: string): [string, string] => [path, `${path}.json`];

export class PartialDownload {
  private fh: FileHandle | null = null;
  private broken = false;
  /**
   * The file's writes, one after the other. They are queued, not awaited by the download: a
   * response must be read as its bytes come, since one whose connection is cut loses what it
   * buffered once it errors.
   */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly model: { sha256: string; size: number },
  ) {}

  /**
   * Opens the partial download of `model` at `path`: its bytes and validators when they are
   * kept for this very model (same sha256 and size, no more bytes than the model has), else none
   * (anything else found there is deleted).
   */
  static async open(path: string, model: { sha256: string; size: number }): Promise<{ partial: PartialDownload; bytes: Buffer; validators: Validators }> {
    const partial = new PartialDownload(path, { sha256: model.sha256.toLowerCase(), size: model.size });
    const none = { partial, bytes: Buffer.alloc(0), validators: { etag: null, lastModified: null } };
    let info: Info;
    let bytes: Buffer;
    try {
      info = JSON.parse(await readFile(`${path}.json`, 'utf8')) as Info;
      bytes = await readFile(path);
    } catch {
      await partial.discard();
      return none;
    }
    const same = info.sha256 === partial.model.sha256 && info.size === partial.model.size && bytes.length <= partial.model.size;
    if (!same) {
      await partial.discard();
      return none;
    }
    return { partial, bytes, validators: { etag: str(info.etag), lastModified: str(info.lastModified) } };
  }

  /** Starts the file again from byte 0 for bytes the server calls `validators` (queued). */
  restart(validators: Validators): void {
    this.enqueue(async () => {
      await this.closeFile();
      this.broken = false;
      await this.guard(async () => {
        await mkdir(dirname(this.path), { recursive: true });
        this.fh = await open(this.path, 'w', 0o644);
        const info: Info = { ...this.model, ...validators };
        // Not atomic: a torn write does not parse, and the next try then starts from byte 0.
        await writeFile(`${this.path}.json`, JSON.stringify(info));
      });
    });
  }

  /** Appends bytes received, after those kept or after restart() (queued). */
  append(chunk: Buffer): void {
    this.enqueue(() =>
      this.guard(async () => {
        this.fh ??= await open(this.path, 'a', 0o644);
        await this.fh.write(chunk);
      }),
    );
  }

  /** Deletes the bytes and what they are (the model was downloaded, or the bytes are not the model's). */
  discard(): Promise<void> {
    this.enqueue(() => this.remove());
    return this.queue;
  }

  /** Closes the file once the writes queued are done, keeping what it holds for the next try. */
  close(): Promise<void> {
    this.enqueue(() => this.closeFile());
    return this.queue;
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch(() => undefined);
  }

  private async remove(): Promise<void> {
    await this.closeFile();
    this.broken = true;
    for (const f of partialFiles(this.path)) await rm(f, { force: true }).catch(() => undefined);
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
  }

  /** Runs a write; the first failure gives the file up (and deletes it: a next try must not resume onto bytes missing in the middle). */
  private async guard(write: () => Promise<void>): Promise<void> {
    if (this.broken) return;
    try {
      await write();
    } catch {
      await this.remove();
    }
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
