import { describe, expect, it } from 'vitest';
import { BufferError, classifySqliteError } from '../../buffer/errors.js';
import { toHttpError } from '../../agent/http/errors.js';

/** An error shaped like better-sqlite3's SqliteError. */
const sqlite = (code: string, message: string): Error => Object.assign(new Error(message), { code });
const PATH = '/data/buffer.sqlite';
const corrupt = classifySqliteError(sqlite('SQLITE_NOTADB', 'file is not a database'), PATH, 'opening the buffer');

describe('toHttpError for buffer failures', () => {
  it('answers a buffer closed by a failed open with the open error, its cause and that it needs an operator', () => {
    const closed = new BufferError('PW_BUFFER_CLOSED', 'the buffer is not open', { cause: corrupt });
    const post = toHttpError(closed, 'POST');
    expect(post).toMatchObject({ status: 503, code: 'PW_BUFFER_CORRUPT' });
    expect(post.message).toBe(
      `the buffer is not open: opening the buffer: ${PATH} is not a valid database (file is not a database) [SQLITE_NOTADB]; ` +
        'this needs an operator (it does not clear by itself): restore the file or move it aside (a new one is then created); nothing was stored, retry once it is fixed',
    );
    const get = toHttpError(closed, 'GET');
    expect(get.code).toBe('PW_BUFFER_CORRUPT');
    expect(get.message).toMatch(/; nothing could be read, retry once it is fixed$/);
  });

  it('words an answer for a read, a write, or either when the method is not known', () => {
    const io = classifySqliteError(sqlite('SQLITE_IOERR_READ', 'disk I/O error'), PATH, 'reading rows');
    expect(toHttpError(io, 'GET').message).toBe(`reading rows: disk I/O error (${PATH}) [SQLITE_IOERR_READ]; nothing could be read, retry later`);
    expect(toHttpError(io, 'HEAD').message).toMatch(/; nothing could be read, retry later$/);
    expect(toHttpError(io, 'POST').message).toMatch(/; nothing was stored, retry later$/);
    expect(toHttpError(io).message).toMatch(/; the request was not carried out, retry later$/);
    for (const method of ['GET', 'HEAD', undefined]) expect(toHttpError(io, method).message).not.toMatch(/stored/);
  });

  it('says a read-only file needs an operator, and a full disk answers 507 to be retried', () => {
    const readonly = classifySqliteError(sqlite('SQLITE_READONLY', 'attempt to write a readonly database'), PATH, 'committing readings');
    expect(toHttpError(readonly, 'POST')).toMatchObject({
      status: 503,
      code: 'PW_BUFFER_READONLY',
      message: expect.stringMatching(/; this needs an operator \(it does not clear by itself\): make the file and its volume writable; nothing was stored, retry once it is fixed$/),
    });
    const full = classifySqliteError(sqlite('SQLITE_FULL', 'database or disk is full'), PATH, 'committing readings');
    expect(toHttpError(full, 'POST')).toMatchObject({ status: 507, code: 'PW_BUFFER_DISK_FULL', message: `committing readings: the disk holding ${PATH} is full [SQLITE_FULL]; nothing was stored, retry later` });
  });

  it('points to /healthz when a closed buffer does not carry the reason', () => {
    const closed = new BufferError('PW_BUFFER_CLOSED', 'the buffer is not open');
    expect(toHttpError(closed, 'POST')).toMatchObject({ status: 503, code: 'PW_BUFFER_CLOSED', message: 'the buffer is not open (GET /healthz names why); nothing was stored, retry later' });
  });
});
