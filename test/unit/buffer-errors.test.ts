import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BufferError, classifySqliteError } from '../../buffer/errors.js';

/** An error shaped like better-sqlite3's SqliteError or a Node file system error. */
const failure = (code: string, message: string): Error => Object.assign(new Error(message), { code });
const PATH = '/data/buffer.db';

describe('classifySqliteError', () => {
  it.each([
    ['SQLITE_FULL', 'database or disk is full', 'PW_BUFFER_DISK_FULL'],
    ['ENOSPC', 'ENOSPC: no space left on device, mkdir', 'PW_BUFFER_DISK_FULL'],
    ['SQLITE_READONLY', 'attempt to write a readonly database', 'PW_BUFFER_READONLY'],
    ['SQLITE_READONLY_DIRECTORY', 'attempt to write a readonly database', 'PW_BUFFER_READONLY'],
    ['EROFS', 'EROFS: read-only file system, mkdir', 'PW_BUFFER_READONLY'],
    ['SQLITE_CANTOPEN', 'unable to open database file', 'PW_BUFFER_CANNOT_OPEN'],
    ['EACCES', 'EACCES: permission denied, mkdir', 'PW_BUFFER_CANNOT_OPEN'],
    ['ENOTDIR', 'ENOTDIR: not a directory, mkdir', 'PW_BUFFER_CANNOT_OPEN'],
    ['EEXIST', 'EEXIST: file already exists, mkdir', 'PW_BUFFER_CANNOT_OPEN'],
    ['SQLITE_NOTADB', 'file is not a database', 'PW_BUFFER_CORRUPT'],
    ['SQLITE_CORRUPT', 'database disk image is malformed', 'PW_BUFFER_CORRUPT'],
    ['SQLITE_CORRUPT_INDEX', 'database disk image is malformed', 'PW_BUFFER_CORRUPT'],
    ['SQLITE_CONSTRAINT_NOTNULL', 'NOT NULL constraint failed: readings.pump_id', 'PW_BUFFER_INVALID_ROW'],
    ['SQLITE_IOERR_WRITE', 'disk I/O error', 'PW_BUFFER_IO'],
    ['SQLITE_IOERR_SHMSIZE', 'disk I/O error', 'PW_BUFFER_DISK_FULL'],
  ])('maps %s (%s) to %s', (sqliteCode, message, expected) => {
    const err = classifySqliteError(failure(sqliteCode, message), PATH, 'committing readings');
    expect(err).toBeInstanceOf(BufferError);
    expect(err.code).toBe(expected);
    expect(err.message.startsWith('committing readings: ')).toBe(true);
    expect((err.cause as Error).message).toBe(message);
  });

  it('names the database file in disk, permission, corruption and I/O messages', () => {
    for (const code of ['SQLITE_FULL', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_NOTADB', 'SQLITE_IOERR_READ', 'SQLITE_IOERR_SHMSIZE']) {
      expect(classifySqliteError(failure(code, 'x'), PATH, 'opening the buffer').message).toContain(PATH);
    }
  });

  it('says an -shm that could not grow on a volume with room is full for this process (a quota or a file size limit)', () => {
    // The full volume itself (0 bytes free) is test/e2e/agent-full-volume.test.ts, on a real tmpfs.
    const err = classifySqliteError(failure('SQLITE_IOERR_SHMSIZE', 'disk I/O error'), join(tmpdir(), 'buffer.sqlite'), 'opening the buffer');
    expect(err.code).toBe('PW_BUFFER_DISK_FULL');
    expect(err.message).toMatch(/is full for this process: SQLite could not grow .*buffer\.sqlite-shm \([\d.]+ MiB free on the volume: a disk quota or a file size limit may be what is full; SQLite: disk I\/O error, SQLITE_IOERR_SHMSIZE\)$/);
  });

  it('passes a BufferError through unchanged, so its code survives wrapping', () => {
    const closed = new BufferError('PW_BUFFER_CLOSED', 'the buffer is not open');
    expect(classifySqliteError(closed, PATH, 'committing readings')).toBe(closed);
  });

  it('handles a thrown value that is not an Error', () => {
    const err = classifySqliteError('boom', PATH, 'saving k');
    expect(err.code).toBe('PW_BUFFER_IO');
    expect(err.message).toBe(`saving k: boom (${PATH})`);
  });
});
